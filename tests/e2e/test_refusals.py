"""Requests the broker must refuse: each with its status, and nothing changed."""

import grpc
import pytest

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.sandbox import Emulator
from tests.e2e.calls import (
    associate_foreign_profile,
    aws_associations,
    aws_policy,
    aws_role_exists,
    grant,
)
from tests.rpc import refusal


def _grants_of(stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str) -> list[pb.Grant]:
    return list(stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id)).grants)


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"instance_id": "i-123"}, "instance_id"),
        ({"instance_id": "instance-0123456789abcdef0"}, "instance_id"),
        ({"bucket": "Upper_Case"}, "bucket"),
        ({"bucket": "192.168.1.1"}, "bucket"),
        ({"bucket": "xn--bucket"}, "bucket"),
        ({"bucket": "my..bucket"}, "bucket"),
        ({"bucket": "bucket-s3alias"}, "bucket"),
        ({"prefix": "/leading-slash"}, "prefix"),
        ({"prefix": "wild*card"}, "prefix"),
        ({"prefix": "x" * 1025}, "prefix"),
        ({"access": pb.ACCESS_UNSPECIFIED}, "access"),
    ],
)
def test_malformed_request_is_invalid_argument_naming_the_field(
    stub: broker_pb2_grpc.AccessBrokerStub,
    instance_id: str,
    buckets: tuple[str, str],
    request_fields: dict[str, object],
    field: str,
) -> None:
    fields = {"instance_id": instance_id, "bucket": buckets[0], "access": pb.ACCESS_UPLOAD}
    fields |= request_fields
    request = pb.GrantAccessRequest(**fields)  # type: ignore[arg-type]

    refused = refusal(lambda: stub.GrantAccess(request))

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(refused.violations) == [field]
    assert _grants_of(stub, instance_id) == []


def test_every_violation_is_reported_at_once(stub: broker_pb2_grpc.AccessBrokerStub) -> None:
    request = pb.GrantAccessRequest(instance_id="nope", bucket="B", prefix="/*")

    refused = refusal(lambda: stub.GrantAccess(request))

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(refused.violations) == {"instance_id", "bucket", "prefix", "access"}


def test_unknown_instance_is_not_found(
    stub: broker_pb2_grpc.AccessBrokerStub, buckets: tuple[str, str]
) -> None:
    refused = refusal(lambda: grant(stub, "i-0123456789abcdef0", buckets[0]))

    assert refused.code == grpc.StatusCode.NOT_FOUND
    assert "i-0123456789abcdef0" in refused.message


def test_unknown_grant_is_not_found(stub: broker_pb2_grpc.AccessBrokerStub) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"

    assert refusal(lambda: stub.GetGrant(pb.GetGrantRequest(grant_id=unknown))).code == (
        grpc.StatusCode.NOT_FOUND
    )
    revoke = pb.RevokeAccessRequest(grant_id=unknown)
    assert refusal(lambda: stub.RevokeAccess(revoke)).code == grpc.StatusCode.NOT_FOUND


def test_foreign_profile_is_failed_precondition_and_nothing_changes(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    name = associate_foreign_profile(emulator, instance_id)
    before = aws_associations(emulator, instance_id)

    refused = refusal(lambda: grant(stub, instance_id, buckets[0]))

    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert name in refused.message
    assert aws_associations(emulator, instance_id) == before
    assert not aws_role_exists(emulator, instance_id)
    assert _grants_of(stub, instance_id) == []


def test_policy_over_iams_size_limit_is_resource_exhausted_and_nothing_changes(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    def grant_numbered(n: int) -> pb.GrantAccessResponse:
        return grant(stub, instance_id, buckets[0], pb.ACCESS_READ, f"{'p' * 200}/{n}/")

    granted = 0
    policy_before: dict[str, object] = {}
    while granted < 200:
        try:
            grant_numbered(granted)
        except grpc.RpcError:
            break
        policy_before = aws_policy(emulator, instance_id)
        granted += 1

    refused = refusal(lambda: grant_numbered(granted))

    assert granted > 10, "the limit struck far too early"
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "10240" in refused.message
    assert aws_policy(emulator, instance_id) == policy_before
    assert len(_grants_of(stub, instance_id)) == granted
