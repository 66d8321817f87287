"""The adapters' retry policy: a budget per kind of fault, the caller's deadline, counters, logs.

Throttling and 5xx answers are stubbed on real clients (botocore.stub.Stubber); connection
errors come from a port nobody listens on. Budgets are measured on a fake clock that only the
policy's waits (and, where a test says so, its attempts) advance: "gave up after the budget" is
then arithmetic, not a race with the machine's load. The caller's deadline is real time.
"""

import logging
import time

import pytest
from botocore.stub import Stubber
from mypy_boto3_ec2.client import EC2Client
from mypy_boto3_iam.client import IAMClient

from broker.adapters.aws import BotoEc2, BotoIam, make_aws_clients
from broker.adapters.aws.retry import Fault, RetryBudgets, RetryCounter
from broker.adapters.aws.tally import CallTally
from broker.domain.convergence import AssociationInfo
from broker.domain.errors import AwsRejected, AwsUnavailable, DeadlineExceeded
from broker.sandbox import Credentials
from broker.service.deadlines import deadline_in, seconds_left
from tests.integration.aws.clients import closed_port
from tests.integration.aws.clock import FakeClock

ROLE = "accessbroker-i-0123456789abcdef0"
INSTANCE_ID = "i-0123456789abcdef0"
PROFILE_ARN = f"arn:aws:iam::123456789012:instance-profile/accessbroker/{ROLE}"
GET_ROLE = {
    "Role": {
        "Path": "/accessbroker/",
        "RoleName": ROLE,
        "RoleId": "AROAEXAMPLEEXAMPLE000",
        "Arn": f"arn:aws:iam::123456789012:role/accessbroker/{ROLE}",
        "CreateDate": "2025-01-01T00:00:00Z",
        "Tags": [{"Key": "managed-by", "Value": "accessbroker"}],
    }
}
ASSOCIATED = {
    "IamInstanceProfileAssociation": {
        "AssociationId": "iip-assoc-0123456789abcdef0",
        "InstanceId": INSTANCE_ID,
        "IamInstanceProfile": {"Arn": PROFILE_ARN, "Id": "AIPAEXAMPLE"},
        "State": "associating",
    }
}
BUDGET = 1.0
BUDGETS = RetryBudgets(throttling=BUDGET, server_error=BUDGET, connection=BUDGET)


@pytest.fixture
def tally() -> CallTally:
    return CallTally()


@pytest.fixture
def iam(
    iam_client: IAMClient, counter: RetryCounter, tally: CallTally, clock: FakeClock
) -> BotoIam:
    return BotoIam(
        iam_client,
        propagation_timeout=5.0,
        budgets=BUDGETS,
        retries=counter,
        tally=tally,
        sleep=clock.sleep,
        clock=clock,
    )


@pytest.fixture
def ec2(ec2_client: EC2Client, counter: RetryCounter, clock: FakeClock) -> BotoEc2:
    return BotoEc2(
        ec2_client,
        propagation_timeout=5.0,
        budgets=BUDGETS,
        retries=counter,
        sleep=clock.sleep,
        clock=clock,
    )


def fail(stubber: Stubber, operation: str, code: str, status: int, times: int = 1) -> None:
    for _ in range(times):
        stubber.add_client_error(
            operation, service_error_code=code, service_message="details", http_status_code=status
        )


def test_throttling_is_retried_until_it_succeeds(
    iam: BotoIam, iam_stub: Stubber, counter: RetryCounter, caplog: pytest.LogCaptureFixture
) -> None:
    fail(iam_stub, "get_role", "Throttling", 400, times=2)
    iam_stub.add_response("get_role", GET_ROLE)
    caplog.set_level(logging.INFO, logger="broker.adapters.aws.retry")

    role = iam.get_role(ROLE)

    assert role is not None and role.name == ROLE
    iam_stub.assert_no_pending_responses()
    assert counter.retries() == {("GetRole", Fault.THROTTLING): 2}
    assert counter.by_fault()[Fault.THROTTLING] == counter.total == 2
    assert counter.gave_up() == {}
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(retries) == 2
    assert all("retrying AWS GetRole after throttling (Throttling)" in m for m in retries)


def test_ec2_request_limit_and_server_errors_are_retried_each_in_its_class(
    ec2: BotoEc2, ec2_stub: Stubber, counter: RetryCounter
) -> None:
    fail(ec2_stub, "associate_iam_instance_profile", "RequestLimitExceeded", 503)
    fail(ec2_stub, "associate_iam_instance_profile", "InternalError", 500)
    fail(ec2_stub, "associate_iam_instance_profile", "Unavailable", 503)
    ec2_stub.add_response("associate_iam_instance_profile", ASSOCIATED)

    association = ec2.associate(INSTANCE_ID, ROLE)

    assert association == AssociationInfo("iip-assoc-0123456789abcdef0", INSTANCE_ID, PROFILE_ARN)
    assert counter.retries() == {
        ("AssociateIamInstanceProfile", Fault.THROTTLING): 1,
        ("AssociateIamInstanceProfile", Fault.SERVER_ERROR): 2,
    }


def test_propagation_and_throttling_are_retried_within_one_call(
    ec2: BotoEc2, ec2_stub: Stubber, counter: RetryCounter
) -> None:
    ec2_stub.add_client_error(
        "associate_iam_instance_profile",
        service_error_code="InvalidParameterValue",
        service_message=f"Value ({ROLE}) for parameter iamInstanceProfile.name is invalid. "
        "Invalid IAM Instance Profile name",
        http_status_code=400,
    )
    fail(ec2_stub, "associate_iam_instance_profile", "RequestLimitExceeded", 503)
    ec2_stub.add_response("associate_iam_instance_profile", ASSOCIATED)

    ec2.associate(INSTANCE_ID, ROLE)

    assert counter.by_fault() == {
        Fault.THROTTLING: 1,
        Fault.SERVER_ERROR: 0,
        Fault.CONNECTION: 0,
        Fault.PROPAGATION: 1,
    }


@pytest.mark.parametrize("answer", [("Throttling", 400), ("ServiceUnavailable", 503)])
def test_a_spent_budget_is_unavailable_at_the_end_of_the_budget(
    iam: BotoIam,
    iam_stub: Stubber,
    counter: RetryCounter,
    clock: FakeClock,
    answer: tuple[str, int],
) -> None:
    code, status = answer
    fail(iam_stub, "get_role", code, status, times=200)

    with pytest.raises(AwsUnavailable, match=f"GetRole failed: {code} .*retried for 1s"):
        iam.get_role(ROLE)

    # Attempts take no time on this clock: the first fails at 0, the last wait is cut short so
    # that the last attempt falls exactly at the end of the budget, and none comes after it.
    assert clock.now == pytest.approx(BUDGET)
    fault = Fault.THROTTLING if code == "Throttling" else Fault.SERVER_ERROR
    assert counter.gave_up() == {("GetRole", fault): 1}
    # The first wait is at most half the budget, so at least two retries fit in it.
    assert counter.retries()[("GetRole", fault)] >= 2


def test_the_time_attempts_take_counts_against_the_budget(
    iam_client: IAMClient, iam: BotoIam, iam_stub: Stubber, clock: FakeClock
) -> None:
    attempt_seconds = 0.3

    def slow_attempt(**_: object) -> None:
        clock.sleep(attempt_seconds)

    fail(iam_stub, "get_role", "Throttling", 400, times=200)
    event = "before-parameter-build.iam.GetRole"  # once per attempt, stubbed or not
    iam_client.meta.events.register(event, slow_attempt)
    try:
        with pytest.raises(AwsUnavailable, match="retried for 1s"):
            iam.get_role(ROLE)
    finally:
        iam_client.meta.events.unregister(event, slow_attempt)

    # The budget runs from the first failure (the end of the first attempt). It is spent once
    # the time since then reaches it; a wait never overshoots it, only the last attempt can.
    # (Counting only the waits would give BUDGET plus an attempt's time for every retry.)
    spent = clock.now - attempt_seconds
    assert BUDGET <= spent <= BUDGET + attempt_seconds + 1e-9


def test_each_class_has_its_own_budget(
    iam_client: IAMClient, iam_stub: Stubber, clock: FakeClock
) -> None:
    iam = BotoIam(
        iam_client,
        propagation_timeout=5.0,
        budgets=RetryBudgets(throttling=2.0, server_error=0.3, connection=0.3),
        sleep=clock.sleep,
        clock=clock,
    )
    fail(iam_stub, "get_role", "InternalFailure", 500, times=200)

    with pytest.raises(AwsUnavailable, match=r"InternalFailure .*; retried for 0\.3s"):
        iam.get_role(ROLE)

    assert clock.now == pytest.approx(0.3), "the server-error budget, not throttling's, applies"


def test_a_deadline_shorter_than_the_budget_is_deadline_exceeded(
    iam_client: IAMClient, iam_stub: Stubber, counter: RetryCounter
) -> None:
    slept: list[float] = []

    def recorded_sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    # Real time: the caller's deadline is measured on the real clock.
    iam = BotoIam(
        iam_client,
        propagation_timeout=5.0,
        budgets=RetryBudgets(throttling=30.0),
        retries=counter,
        sleep=recorded_sleep,
    )
    fail(iam_stub, "get_role", "Throttling", 400, times=200)
    started = time.monotonic()

    with deadline_in(0.6), pytest.raises(DeadlineExceeded, match="deadline passed during AWS"):
        iam.get_role(ROLE)

    # A wait is only begun when it ends before the deadline, and real time passes at least as
    # fast as the waits, so together they stay short of it whatever the load.
    assert sum(slept) < 0.6
    # The deadline, not the 30 s budget, ended it (a ceiling generous for a loaded machine).
    assert time.monotonic() - started < 10.0
    assert counter.gave_up() == {("GetRole", Fault.THROTTLING): 1}


def test_a_deadline_that_passes_during_a_wait_ends_the_call_the_same_way(
    iam_client: IAMClient, iam_stub: Stubber, counter: RetryCounter
) -> None:
    def overrunning_sleep(seconds: float) -> None:
        # What a busy machine does at worst: the wait ends after the deadline it was cut for.
        left = seconds_left()
        assert left is not None
        time.sleep(max(seconds, left) + 0.05)

    iam = BotoIam(
        iam_client,
        propagation_timeout=5.0,
        budgets=RetryBudgets(throttling=30.0),
        retries=counter,
        sleep=overrunning_sleep,
    )
    fail(iam_stub, "get_role", "Throttling", 400, times=200)

    with deadline_in(0.3), pytest.raises(DeadlineExceeded, match=r"\(throttling: Throttling\)"):
        iam.get_role(ROLE)

    assert counter.gave_up() == {("GetRole", Fault.THROTTLING): 1}


def test_a_passed_deadline_makes_no_call(iam: BotoIam, iam_stub: Stubber) -> None:
    iam_stub.add_response("get_role", GET_ROLE)

    with deadline_in(0), pytest.raises(DeadlineExceeded, match="before the call"):
        iam.get_role(ROLE)

    with pytest.raises(AssertionError):
        iam_stub.assert_no_pending_responses()


def test_access_denied_is_not_retried(
    iam: BotoIam, iam_stub: Stubber, counter: RetryCounter
) -> None:
    fail(iam_stub, "put_role_policy", "AccessDenied", 403)
    iam_stub.add_response("put_role_policy", {})

    with pytest.raises(AwsRejected, match="PutRolePolicy failed: AccessDenied"):
        iam.put_role_policy(ROLE, "accessbroker-grants", "{}")

    assert counter.total == 0
    with pytest.raises(AssertionError):
        iam_stub.assert_no_pending_responses()


def test_refused_connections_are_retried_within_their_budget(clock: FakeClock) -> None:
    clients = make_aws_clients(
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        region="us-east-1",
        credentials=Credentials("AKIAEXAMPLEEXAMPLE00", "secret"),
        connect_timeout=0.5,
    )
    counter = RetryCounter()
    iam = BotoIam(
        clients.iam,
        propagation_timeout=5.0,
        budgets=BUDGETS,
        retries=counter,
        sleep=clock.sleep,
        clock=clock,
    )

    with pytest.raises(AwsUnavailable, match="EndpointConnectionError; retried for 1s"):
        iam.get_role(ROLE)

    # Real refusals, fake time: the last attempt falls exactly at the end of the budget.
    assert clock.now == pytest.approx(BUDGET)
    assert counter.by_fault()[Fault.CONNECTION] >= 2
    assert counter.gave_up() == {("GetRole", Fault.CONNECTION): 1}


def test_every_attempt_is_tallied_with_its_outcome(
    iam: BotoIam, iam_stub: Stubber, tally: CallTally
) -> None:
    fail(iam_stub, "get_role", "Throttling", 400)
    fail(iam_stub, "get_role", "ServiceFailure", 500)
    iam_stub.add_response("get_role", GET_ROLE)
    fail(iam_stub, "get_role", "NoSuchEntity", 404)

    assert iam.get_role(ROLE) is not None
    assert iam.get_role("accessbroker-i-0fedcba987654321f") is None

    assert tally.counts() == {
        ("iam", "GetRole", "throttled"): 1,
        ("iam", "GetRole", "server_error"): 1,
        ("iam", "GetRole", "success"): 1,
        ("iam", "GetRole", "client_error"): 1,
    }
