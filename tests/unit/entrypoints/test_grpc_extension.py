"""ExtendGrant and covered grants over gRPC: mapping and status codes."""

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from tests.rpc import refusal
from tests.unit.service.fakes import INSTANCE, START

MISSING = "00000000-0000-0000-0000-00000000beef"


def hours(count: int) -> Duration:
    return Duration(seconds=count * 3600)


def grant(stub: broker_pb2_grpc.AccessBrokerStub, access: "pb.Access.ValueType") -> pb.Grant:
    request = pb.GrantAccessRequest(
        instance_id=INSTANCE, bucket="photos", access=access, ttl=hours(1)
    )
    return stub.GrantAccess(request).grant


def test_extend_returns_the_grant_with_its_new_expiry(
    stub: broker_pb2_grpc.AccessBrokerStub,
) -> None:
    granted = grant(stub, pb.ACCESS_UPLOAD)

    extended = stub.ExtendGrant(pb.ExtendGrantRequest(grant_id=granted.grant_id, ttl=hours(3)))

    assert extended.grant_id == granted.grant_id
    assert extended.expires_at.ToSeconds() == int(START.timestamp()) + 3 * 3600


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (pb.ExtendGrantRequest(grant_id=MISSING), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.ExtendGrantRequest(grant_id=MISSING, ttl=hours(1)), grpc.StatusCode.NOT_FOUND),
    ],
)
def test_extend_refusals(
    stub: broker_pb2_grpc.AccessBrokerStub, request_: pb.ExtendGrantRequest, code: grpc.StatusCode
) -> None:
    assert refusal(lambda: stub.ExtendGrant(request_)).code == code


def test_extend_of_a_revoked_grant_is_a_failed_precondition(
    stub: broker_pb2_grpc.AccessBrokerStub,
) -> None:
    granted = grant(stub, pb.ACCESS_UPLOAD)
    stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=granted.grant_id))

    request = pb.ExtendGrantRequest(grant_id=granted.grant_id, ttl=hours(1))
    refused = refusal(lambda: stub.ExtendGrant(request))

    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "revoked" in refused.message


def test_a_covered_request_answers_the_covering_grant_and_says_so(
    stub: broker_pb2_grpc.AccessBrokerStub,
) -> None:
    broad = grant(stub, pb.ACCESS_READ_WRITE)
    request = pb.GrantAccessRequest(
        instance_id=INSTANCE, bucket="photos", access=pb.ACCESS_READ, ttl=hours(1)
    )

    answer = stub.GrantAccess(request)

    assert answer.covered_by == broad.grant_id == answer.grant.grant_id
