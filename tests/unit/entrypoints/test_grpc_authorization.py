"""Authorization at the gRPC surface, over fake ports: PERMISSION_DENIED and ExplainAccess."""

from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.access import Access
from broker.domain.authorization import AccessPolicy, Rule
from broker.entrypoints.grpc.auth import BearerTokens
from broker.entrypoints.grpc.security import ServerSecurity
from tests.credentials import stored_tokens
from tests.rpc import refusal
from tests.unit.entrypoints.serving import channel_to
from tests.unit.service.fakes import INSTANCE, World, world

POLICY = AccessPolicy(
    admins=frozenset({"admin"}),
    rules=(
        Rule(1, ("alice",), ("photos",), frozenset({Access.UPLOAD}), max_ttl=timedelta(hours=8)),
    ),
)
TOKENS = {"alice": "alice-token", "bob": "bob-token", "admin": "admin-token"}


def _as(identity: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {TOKENS[identity]}"),)


@pytest.fixture
def w() -> World:
    return world(INSTANCE).with_policy(POLICY)


@pytest.fixture
def stub(w: World) -> Iterator[broker_pb2_grpc.AccessBrokerStub]:
    security = ServerSecurity(BearerTokens(stored_tokens(TOKENS)))
    with channel_to(w.bus, security=security) as channel:
        yield broker_pb2_grpc.AccessBrokerStub(channel)


def _request(bucket: str = "photos") -> pb.GrantAccessRequest:
    return pb.GrantAccessRequest(instance_id=INSTANCE, bucket=bucket, access=pb.ACCESS_UPLOAD)


def test_refusals_are_permission_denied_naming_the_reason(
    stub: broker_pb2_grpc.AccessBrokerStub,
) -> None:
    granted = stub.GrantAccess(_request(), metadata=_as("alice")).grant

    refused_grant = refusal(lambda: stub.GrantAccess(_request("videos"), metadata=_as("alice")))
    refused_read = refusal(
        lambda: stub.GetGrant(pb.GetGrantRequest(grant_id=granted.grant_id), metadata=_as("bob"))
    )

    assert granted.expires_at.ToDatetime() - granted.created_at.ToDatetime() == timedelta(hours=8)
    assert refused_grant.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused_grant.message == "no rule matched: rule 1: bucket videos is not one of photos"
    assert refused_read.code == grpc.StatusCode.PERMISSION_DENIED
    assert "requested by another caller" in refused_read.message


def replace_bucket(request: pb.ExplainAccessRequest, bucket: str) -> pb.ExplainAccessRequest:
    changed = pb.ExplainAccessRequest()
    changed.CopyFrom(request)
    changed.bucket = bucket
    return changed


def test_explain_access_answers_admins_with_the_decision(
    stub: broker_pb2_grpc.AccessBrokerStub,
) -> None:
    request = pb.ExplainAccessRequest(
        identity="alice", instance_id=INSTANCE, bucket="photos", access=pb.ACCESS_UPLOAD
    )

    decision = stub.ExplainAccess(request, metadata=_as("admin"))
    refused = stub.ExplainAccess(replace_bucket(request, "videos"), metadata=_as("admin"))
    not_admin = refusal(lambda: stub.ExplainAccess(request, metadata=_as("alice")))

    assert (decision.allowed, decision.reason, decision.rule) == (True, "allowed by rule 1", 1)
    assert decision.ttl.ToTimedelta() == timedelta(hours=8)
    assert (refused.allowed, refused.rule, refused.HasField("ttl")) == (False, 0, False)
    assert not_admin.code == grpc.StatusCode.PERMISSION_DENIED


def test_explain_access_refuses_bad_input_as_invalid_argument(
    stub: broker_pb2_grpc.AccessBrokerStub,
) -> None:
    request = pb.ExplainAccessRequest(identity="", instance_id="i-1", bucket="b")

    refused = refusal(lambda: stub.ExplainAccess(request, metadata=_as("admin")))

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(refused.violations) == {"identity", "instance_id", "bucket", "access"}


def test_reconciling_is_for_admins_only(stub: broker_pb2_grpc.AccessBrokerStub) -> None:
    request = pb.ReconcileRequest(dry_run=True)

    refused = refusal(lambda: stub.Reconcile(request, metadata=_as("alice")))

    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.message == "only an admin may reconcile AWS with the grants"
    assert list(stub.Reconcile(request, metadata=_as("admin")).drifts) == []
