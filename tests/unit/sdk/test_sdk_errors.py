"""Failed calls become BrokerError subclasses that carry the server's words, reason and
violations."""

import grpc
import pytest

from accessbroker import BrokerClient, errors
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import Abort, FakeBroker, Slow
from tests.unit.sdk.messages import GRANT_ID, grant_message


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, errors.NotFound),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
        (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExists),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
        (grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhausted),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded),
        (grpc.StatusCode.INTERNAL, errors.Internal),
    ],
)
def test_each_status_raises_its_error_class_with_the_server_message(
    fake: FakeBroker,
    client: BrokerClient,
    code: grpc.StatusCode,
    error_class: type[errors.BrokerError],
) -> None:
    fake.answer("GetGrant", Abort(code, f"grant {GRANT_ID} went wrong"))

    with pytest.raises(error_class) as raised:
        client.get(GRANT_ID)

    assert type(raised.value) is error_class
    assert isinstance(raised.value, errors.BrokerError)
    assert raised.value.code == code
    assert str(raised.value) == f"grant {GRANT_ID} went wrong"
    assert raised.value.message == f"grant {GRANT_ID} went wrong"
    assert (raised.value.reason, raised.value.metadata) == ("", {})  # the status named none
    assert len(fake.calls["GetGrant"]) == 1


def test_unavailable_raises_unavailable_once_the_retries_are_spent(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("GetGrant", Abort(grpc.StatusCode.UNAVAILABLE, "AWS could not be reached"))

    with pytest.raises(errors.Unavailable, match="AWS could not be reached"):
        client.get(GRANT_ID)

    assert len(fake.calls["GetGrant"]) > 1


def test_invalid_argument_carries_the_bad_request_field_violations(
    fake: FakeBroker, client: BrokerClient
) -> None:
    violations = [
        ("bucket", "must be 3-63 lowercase letters, digits, dots or hyphens"),
        ("prefix", "must not start with '/'"),
    ]
    fake.answer(
        "GrantAccess",
        Abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is invalid", violations),
    )

    with pytest.raises(errors.InvalidArgument) as raised:
        client.grant("i-0123456789abcdef0", "Bad_Bucket", "upload", prefix="/x")

    assert raised.value.violations == dict(violations)
    assert raised.value.field_violations == violations
    assert str(raised.value) == "the request is invalid"


def test_invalid_argument_keeps_every_violation_of_a_field(
    fake: FakeBroker, client: BrokerClient
) -> None:
    violations = [
        ("prefix", "must not start with '/' (S3 keys are relative to the bucket)"),
        ("bucket", "must be 3-63 lowercase letters, digits, dots or hyphens"),
        ("prefix", "must not contain '*' or '?': the broker adds the only wildcard"),
    ]
    fake.answer(
        "GrantAccess",
        Abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            "the request is invalid",
            violations,
            reason="INVALID_REQUEST",
        ),
    )

    with pytest.raises(errors.InvalidArgument) as raised:
        client.grant("i-0123456789abcdef0", "B", "upload", prefix="/*")

    assert raised.value.field_violations == violations
    assert [(v.field, v.description) for v in raised.value.field_violations] == violations
    assert raised.value.violations == {
        "prefix": "must not start with '/' (S3 keys are relative to the bucket); "
        "must not contain '*' or '?': the broker adds the only wildcard",
        "bucket": "must be 3-63 lowercase letters, digits, dots or hyphens",
    }
    assert raised.value.reason == "INVALID_REQUEST"


def test_invalid_argument_without_details_has_no_violations(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("GetGrant", Abort(grpc.StatusCode.INVALID_ARGUMENT, "grant_id is not a UUID"))

    with pytest.raises(errors.InvalidArgument) as raised:
        client.get("nope")

    assert raised.value.violations == {}
    assert raised.value.field_violations == []
    assert "grant_id is not a UUID" in str(raised.value)


def test_the_reason_tells_apart_refusals_that_share_a_status(
    fake: FakeBroker, client: BrokerClient
) -> None:
    arn = "arn:aws:iam::123456789012:instance-profile/hand-made"
    fake.answer(
        "GrantAccess",
        Abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"instance i-0123456789abcdef0 already has instance profile {arn}",
            reason="FOREIGN_PROFILE",
            metadata={"instanceId": "i-0123456789abcdef0", "profileArn": arn},
        ),
    )
    fake.answer(
        "RevokeAccess",
        Abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"grant {GRANT_ID} is expired; there is nothing to revoke",
            reason="WRONG_STATE",
        ),
    )

    with pytest.raises(errors.FailedPrecondition) as foreign:
        client.grant("i-0123456789abcdef0", "reports", "upload")
    with pytest.raises(errors.FailedPrecondition) as wrong_state:
        client.revoke(GRANT_ID)

    assert foreign.value.reason == "FOREIGN_PROFILE"
    assert foreign.value.metadata == {"instanceId": "i-0123456789abcdef0", "profileArn": arn}
    assert wrong_state.value.reason == "WRONG_STATE"
    assert wrong_state.value.metadata == {}


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhausted),
        (grpc.StatusCode.ABORTED, errors.BrokerError),
    ],
)
def test_every_error_class_carries_the_reason(
    fake: FakeBroker,
    client: BrokerClient,
    code: grpc.StatusCode,
    error_class: type[errors.BrokerError],
) -> None:
    fake.answer("GetGrant", Abort(code, "refused", reason="SOME_REASON", metadata={"k": "v"}))

    with pytest.raises(error_class) as raised:
        client.get(GRANT_ID)

    assert type(raised.value) is error_class
    assert raised.value.reason == "SOME_REASON"
    assert raised.value.metadata == {"k": "v"}


def test_an_error_info_of_another_domain_is_not_the_brokers_reason(
    fake: FakeBroker, client: BrokerClient
) -> None:
    # A proxy in front of the broker may add its own ErrorInfo; its reasons mean something else.
    fake.answer(
        "GetGrant",
        Abort(grpc.StatusCode.NOT_FOUND, "no route", reason="NO_ROUTE", domain="proxy.example"),
    )

    with pytest.raises(errors.NotFound) as raised:
        client.get(GRANT_ID)

    assert (raised.value.reason, raised.value.metadata) == ("", {})
    assert str(raised.value) == "no route"


def test_status_details_the_sdk_cannot_read_cost_the_reason_not_the_error(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer(
        "GetGrant",
        Abort(grpc.StatusCode.NOT_FOUND, "no such grant", status_details=b"\xff not a Status"),
    )

    with pytest.raises(errors.NotFound) as raised:
        client.get(GRANT_ID)

    assert (raised.value.reason, raised.value.metadata) == ("", {})
    assert str(raised.value) == "no such grant"


def test_a_status_without_a_message_is_still_put_in_words(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("GetGrant", Abort(grpc.StatusCode.NOT_FOUND))

    with pytest.raises(errors.NotFound) as raised:
        client.get(GRANT_ID)

    assert str(raised.value) == "not found"


def test_a_status_without_its_own_class_is_a_broker_error_naming_the_code(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("GetGrant", Abort(grpc.StatusCode.ABORTED, "conflicting update"))

    with pytest.raises(errors.BrokerError) as raised:
        client.get(GRANT_ID)

    assert type(raised.value) is errors.BrokerError
    assert str(raised.value) == "ABORTED: conflicting update"


def test_a_call_slower_than_the_timeout_raises_deadline_exceeded(
    fake: FakeBroker, address: str
) -> None:
    fake.answer("GetGrant", Slow(1.0, grant_message()))

    with BrokerClient(address, timeout=0.2) as client, pytest.raises(errors.DeadlineExceeded):
        client.get(GRANT_ID)


def test_errors_come_from_list_and_describe_too(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("ListGrants", Abort(grpc.StatusCode.PERMISSION_DENIED, "not yours"))
    fake.answer("DescribeInstanceAccess", Abort(grpc.StatusCode.NOT_FOUND, "no such instance"))

    with pytest.raises(errors.PermissionDenied, match="not yours"):
        list(client.list_grants())
    with pytest.raises(errors.NotFound, match="no such instance"):
        client.describe("i-0123456789abcdef0")
    assert fake.requests("ListGrants", pb.ListGrantsRequest) == [pb.ListGrantsRequest()]
