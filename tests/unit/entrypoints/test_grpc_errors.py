"""Every broker error reaches the caller with its status code, its message and a
google.rpc.ErrorInfo naming its reason; an unexpected error is a bare INTERNAL naming nothing."""

import re
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

import accessbroker.errors as sdk_errors
from accessbroker import BrokerClient
from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain import errors
from broker.entrypoints.grpc.errors import INTERNAL_MESSAGE, ErrorInterceptor, status_for
from tests.rpc import refusal

INSTANCE = "i-0123456789abcdef0"
GRANT_ID = "6f1c2a9e-0000-4000-8000-000000000001"
PROFILE_ARN = "arn:aws:iam::123456789012:instance-profile/hand-made"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERRORS_DOC = Path(__file__).resolve().parents[3] / "docs" / "errors.md"

# The published reasons and their codes. A reason is a promise to callers who match on it:
# a change here is a change of the API, and docs/errors.md must say the same.
CASES: list[tuple[errors.BrokerError, grpc.StatusCode, str]] = [
    (
        errors.InvalidRequest([errors.FieldViolation("bucket", "too short")]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    ),
    (errors.InstanceNotFound(INSTANCE), grpc.StatusCode.NOT_FOUND, "INSTANCE_NOT_FOUND"),
    (errors.GrantNotFound(GRANT_ID), grpc.StatusCode.NOT_FOUND, "GRANT_NOT_FOUND"),
    (
        errors.ForeignProfile(INSTANCE, PROFILE_ARN),
        grpc.StatusCode.FAILED_PRECONDITION,
        "FOREIGN_PROFILE",
    ),
    (
        errors.ForeignRole("role", "accessbroker-i-0123456789abcdef0"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "FOREIGN_ROLE",
    ),
    (
        errors.OutsideBoundary("prod (222222222222)", "payroll", ["s3:GetObject on x"]),
        grpc.StatusCode.FAILED_PRECONDITION,
        "OUTSIDE_BOUNDARY",
    ),
    (
        errors.WrongState(GRANT_ID, "revoked", "only a pending or active grant is extended"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WRONG_STATE",
    ),
    (
        errors.PolicyTooLarge(10_300, 10_240),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "POLICY_TOO_LARGE",
    ),
    (errors.TooManyStreams(64), grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_STREAMS"),
    (
        errors.AwsQuotaExceeded("AWS CreateRole failed: LimitExceeded"),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "AWS_QUOTA_EXCEEDED",
    ),
    (errors.IdempotencyConflict("key-1"), grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_CONFLICT"),
    (
        errors.AwsUnavailable("AWS DescribeInstances failed: Throttling"),
        grpc.StatusCode.UNAVAILABLE,
        "AWS_UNAVAILABLE",
    ),
    (
        errors.StoreUnavailable("the database did not answer"),
        grpc.StatusCode.UNAVAILABLE,
        "STORE_UNAVAILABLE",
    ),
    (
        errors.DeadlineExceeded("the deadline passed"),
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "DEADLINE_EXCEEDED",
    ),
    (
        errors.AwsRejected("AWS PutRolePolicy failed: AccessDenied"),
        grpc.StatusCode.INTERNAL,
        "AWS_REJECTED",
    ),
    (
        errors.GuardrailViolation("statement S1 is not a plain Allow"),
        grpc.StatusCode.INTERNAL,
        "GUARDRAIL_VIOLATION",
    ),
    (errors.Unauthenticated("no credentials"), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
    (
        errors.PermissionDenied("the policy does not allow it"),
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    ),
]


def _subclasses(cls: type[errors.BrokerError]) -> Iterator[type[errors.BrokerError]]:
    """The broker's own errors below `cls`; not the ones tests define (and may not yet have
    been collected) to see them refused."""
    for sub in cls.__subclasses__():
        if sub.__module__ == errors.__name__:
            yield sub
        yield from _subclasses(sub)


def _status(error: errors.BrokerError) -> status_pb2.Status:
    """The google.rpc.Status the interceptor sends for `error`, as a client receives it."""
    sent = status_for(error)
    [details] = [value for key, value in sent.trailing_metadata if key == STATUS_DETAILS_KEY]
    assert isinstance(details, bytes)
    return status_pb2.Status.FromString(details)


def _error_infos(status: status_pb2.Status) -> list[error_details_pb2.ErrorInfo]:
    infos = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            infos.append(info)
    return infos


def test_the_table_names_every_broker_error_once() -> None:
    # A new error must be added above (and so to docs/errors.md) before it can ship.
    assert {type(error) for error, _, _ in CASES} == set(_subclasses(errors.BrokerError))
    reasons = [reason for _, _, reason in CASES]
    assert len(set(reasons)) == len(reasons)


@pytest.mark.parametrize(("error", "code", "reason"), CASES, ids=[r for _, _, r in CASES])
def test_each_error_keeps_its_code_and_message_and_names_its_reason(
    error: errors.BrokerError, code: grpc.StatusCode, reason: str
) -> None:
    status = _status(error)

    assert type(error).reason == reason
    assert (status.code, status.message) == (code.value[0], str(error))
    [info] = _error_infos(status)
    assert (info.reason, info.domain) == (reason, errors.ERROR_DOMAIN)
    assert dict(info.metadata) == dict(error.metadata)
    # Metadata repeats what the message already shows the caller, never anything more.
    assert all(value in status.message for value in info.metadata.values())


def test_metadata_names_what_a_program_needs_without_reading_the_message() -> None:
    def metadata(error: errors.BrokerError) -> dict[str, str]:
        [info] = _error_infos(_status(error))
        return dict(info.metadata)

    assert metadata(errors.ForeignProfile(INSTANCE, PROFILE_ARN)) == {
        "instanceId": INSTANCE,
        "profileArn": PROFILE_ARN,
    }
    assert metadata(errors.PolicyTooLarge(10_300, 10_240)) == {
        "policySize": "10300",
        "limit": "10240",
    }
    assert metadata(errors.WrongState(GRANT_ID, "revoked", "nothing to do")) == {
        "grantId": GRANT_ID,
        "state": "revoked",
    }
    # What the caller sent, or the broker's own set-up, is not repeated back.
    assert metadata(errors.Unauthenticated("no credentials")) == {}
    assert metadata(errors.AwsRejected("AWS PutRolePolicy failed: AccessDenied")) == {}


def test_an_invalid_request_carries_every_violation_beside_its_reason() -> None:
    violations = [
        errors.FieldViolation("prefix", "must not start with '/'"),
        errors.FieldViolation("bucket", "too short"),
        errors.FieldViolation("prefix", "must not contain '*' or '?'"),
    ]

    status = _status(errors.InvalidRequest(violations))

    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)  # first, where it always was
    sent = [errors.FieldViolation(v.field, v.description) for v in bad_request.field_violations]
    assert sent == violations
    assert [info.reason for info in _error_infos(status)] == ["INVALID_REQUEST"]


def test_a_subclass_without_a_reason_of_its_own_cannot_be_defined() -> None:
    with pytest.raises(TypeError, match="Inherited"):

        class Inherited(errors.AwsRejected):  # would read as AWS_REJECTED
            pass

    with pytest.raises(TypeError, match="Lowercase"):

        class Lowercase(errors.BrokerError):
            reason = "lowercase"


def test_the_sdk_reads_reasons_in_the_brokers_domain() -> None:
    assert sdk_errors.ERROR_DOMAIN == errors.ERROR_DOMAIN


def test_docs_list_every_reason_with_its_code() -> None:
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([A-Z_]+)` \|", ERRORS_DOC.read_text(), re.MULTILINE)

    assert sorted(rows) == sorted((reason, code.name) for _, code, reason in CASES)


class _Raising:
    """GetGrant, and only it, raises whatever the test sets; the interceptor alone turns it
    into a status, with no servicer or service layer in between."""

    def __init__(self) -> None:
        self.error: Exception = RuntimeError("unset")

    def get_grant(self, request: pb.GetGrantRequest, context: grpc.ServicerContext) -> pb.Grant:
        raise self.error

    def handler(self) -> "grpc.GenericRpcHandler[Any, Any]":
        return grpc.method_handlers_generic_handler(
            pb.DESCRIPTOR.services_by_name["AccessBroker"].full_name,
            {
                "GetGrant": grpc.unary_unary_rpc_method_handler(
                    self.get_grant,
                    request_deserializer=pb.GetGrantRequest.FromString,
                    response_serializer=pb.Grant.SerializeToString,
                )
            },
        )


@pytest.fixture
def servicer() -> _Raising:
    return _Raising()


@pytest.fixture
def address(servicer: _Raising) -> Iterator[str]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2), interceptors=[ErrorInterceptor()]
    )
    server.add_generic_rpc_handlers((servicer.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture
def stub(address: str) -> Iterator[broker_pb2_grpc.AccessBrokerStub]:
    with grpc.insecure_channel(address) as channel:
        yield broker_pb2_grpc.AccessBrokerStub(channel)


def _get(stub: broker_pb2_grpc.AccessBrokerStub) -> object:
    return stub.GetGrant(pb.GetGrantRequest(grant_id=GRANT_ID))


def test_a_refusal_reaches_the_caller_with_its_reason(
    servicer: _Raising, stub: broker_pb2_grpc.AccessBrokerStub
) -> None:
    servicer.error = errors.ForeignProfile(INSTANCE, PROFILE_ARN)

    refused = refusal(lambda: _get(stub))

    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.message == str(servicer.error)
    assert refused.reason == "FOREIGN_PROFILE"
    assert refused.metadata == {"instanceId": INSTANCE, "profileArn": PROFILE_ARN}


def test_an_unexpected_error_is_a_bare_internal_naming_no_reason(
    servicer: _Raising, stub: broker_pb2_grpc.AccessBrokerStub
) -> None:
    servicer.error = KeyError("password=hunter2")

    refused = refusal(lambda: _get(stub))

    assert refused.code == grpc.StatusCode.INTERNAL
    assert refused.message == INTERNAL_MESSAGE
    assert (refused.reason, refused.metadata, refused.violations) == ("", {}, {})


def test_the_sdk_raises_what_the_interceptor_sends(servicer: _Raising, address: str) -> None:
    with BrokerClient(address, timeout=5.0) as client:
        servicer.error = errors.ForeignProfile(INSTANCE, PROFILE_ARN)
        with pytest.raises(sdk_errors.FailedPrecondition) as foreign:
            client.get(GRANT_ID)
        servicer.error = errors.InvalidRequest(
            [
                errors.FieldViolation("grant_id", "must be a grant id"),
                errors.FieldViolation("grant_id", "must not be empty"),
            ]
        )
        with pytest.raises(sdk_errors.InvalidArgument) as invalid:
            client.get(GRANT_ID)
        servicer.error = RuntimeError("connection to db.internal:5432 failed")
        with pytest.raises(sdk_errors.Internal) as internal:
            client.get(GRANT_ID)

    assert foreign.value.reason == "FOREIGN_PROFILE"
    assert foreign.value.metadata["profileArn"] == PROFILE_ARN
    assert str(foreign.value) == str(errors.ForeignProfile(INSTANCE, PROFILE_ARN))
    assert invalid.value.reason == "INVALID_REQUEST"
    assert invalid.value.field_violations == [
        ("grant_id", "must be a grant id"),
        ("grant_id", "must not be empty"),
    ]
    assert invalid.value.violations == {"grant_id": "must be a grant id; must not be empty"}
    assert (internal.value.reason, str(internal.value)) == ("", INTERNAL_MESSAGE)
