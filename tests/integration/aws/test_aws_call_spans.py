"""Each AWS call is a span under the one current when it was made, named for its service and
action, with how many attempts it took and how the last one ended. Answers are stubbed on the
emulator's client (botocore.stub.Stubber), so no request leaves; retries wait on a fake clock."""

import pytest
from botocore.stub import Stubber
from mypy_boto3_iam.client import IAMClient
from opentelemetry.trace import SpanKind, StatusCode

from broker.adapters.aws.calls import AwsCalls
from broker.adapters.aws.iam import BotoIam
from broker.adapters.aws.retry import AwsRetry, RetryCounter
from broker.adapters.aws.tally import CallTally
from broker.domain.errors import AwsRejected
from tests.integration.aws.clock import FakeClock
from tests.spans import RecordingTracer, recording_tracer

ROLE = "accessbroker-i-0123456789abcdef0"
ROLE_ANSWER = {
    "Role": {
        "Path": "/",
        "RoleName": ROLE,
        "RoleId": "AROAEXAMPLEEXAMPLE0001",
        "Arn": f"arn:aws:iam::123456789012:role/{ROLE}",
        "CreateDate": "2026-01-01T00:00:00Z",
    }
}


@pytest.fixture
def traced() -> RecordingTracer:
    return recording_tracer()


@pytest.fixture
def tally() -> CallTally:
    return CallTally()


@pytest.fixture
def iam(
    iam_client: IAMClient, traced: RecordingTracer, tally: CallTally, clock: FakeClock
) -> AwsCalls:
    retry = AwsRetry(counter=RetryCounter(), sleep=clock.sleep, clock=clock)
    return AwsCalls(
        iam_client,
        retry,
        missing=BotoIam.MISSING,
        paging=BotoIam.PAGING,
        tally=tally,
        service=BotoIam.SERVICE,
        tracer=traced.tracer,
    )


def test_a_call_retried_is_one_span_under_the_current_one_naming_its_attempts(
    iam: AwsCalls, iam_stub: Stubber, traced: RecordingTracer, tally: CallTally
) -> None:
    iam_stub.add_client_error("get_role", service_error_code="Throttling", http_status_code=400)
    iam_stub.add_response("get_role", ROLE_ANSWER)

    with traced.tracer.start_as_current_span("convergence") as parent:
        iam.call("GetRole", RoleName=ROLE)

    [call, _] = traced.ended()
    assert call.parent is not None and call.parent.span_id == parent.get_span_context().span_id
    assert (call.name, call.kind, call.status.status_code) == (
        "iam.GetRole",
        SpanKind.CLIENT,
        StatusCode.UNSET,
    )
    assert dict(call.attributes or {}) == {
        "rpc.system": "aws-api",
        "rpc.service": "iam",
        "rpc.method": "GetRole",
        "aws.attempts": 2,
        "aws.retries": 1,
        "aws.outcome": "success",
    }
    assert tally.counts() == {("iam", "GetRole", "throttled"): 1, ("iam", "GetRole", "success"): 1}


def test_a_refused_call_is_a_failed_span(
    iam: AwsCalls, iam_stub: Stubber, traced: RecordingTracer
) -> None:
    iam_stub.add_client_error("get_role", service_error_code="AccessDenied", http_status_code=403)

    with pytest.raises(AwsRejected):
        iam.call("GetRole", RoleName=ROLE)

    [call] = traced.ended()
    assert call.status.status_code is StatusCode.ERROR
    assert (call.attributes or {})["aws.outcome"] == "client_error"
    assert (call.attributes or {})["aws.attempts"] == 1


def test_something_missing_where_that_is_fine_is_not_a_failure(
    iam: AwsCalls, iam_stub: Stubber, traced: RecordingTracer
) -> None:
    iam_stub.add_client_error("get_role", service_error_code="NoSuchEntity", http_status_code=404)

    assert iam.call("GetRole", RoleName=ROLE, none_if_missing=True) is None

    [call] = traced.ended()
    assert call.status.status_code is StatusCode.UNSET
    assert (call.attributes or {})["aws.outcome"] == "client_error"
