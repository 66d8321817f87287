"""Repeats, idempotency keys, dry runs, listings and the audit trail."""

import json

import grpc

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.e2e.calls import aws_associations, aws_role_exists, grant
from tests.rpc import refusal


def _audit(stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str) -> list[pb.AuditEvent]:
    request = pb.ListAuditEventsRequest(instance_id=instance_id, page_size=1000)
    return list(stub.ListAuditEvents(request).events)


def test_identical_grant_returns_the_existing_one(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, buckets: tuple[str, str]
) -> None:
    first = grant(stub, instance_id, buckets[0], pb.ACCESS_READ, "r/").grant
    events_before = _audit(stub, instance_id)

    again = grant(stub, instance_id, buckets[0], pb.ACCESS_READ, "r/").grant

    assert again.grant_id == first.grant_id
    assert again.state == pb.GRANT_STATE_ACTIVE
    assert _audit(stub, instance_id) == events_before
    assert len(stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id)).grants) == 1


def test_idempotency_key_returns_the_first_result_and_refuses_another_request(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, buckets: tuple[str, str]
) -> None:
    key = f"deploy-{instance_id}"
    first = grant(stub, instance_id, buckets[0], prefix="a/", idempotency_key=key)
    events_before = _audit(stub, instance_id)

    retried = grant(stub, instance_id, buckets[0], prefix="a/", idempotency_key=key)
    refused = refusal(
        lambda: grant(stub, instance_id, buckets[0], prefix="b/", idempotency_key=key)
    )

    assert retried.grant.grant_id == first.grant.grant_id
    assert retried.policy_document == first.policy_document
    assert _audit(stub, instance_id) == events_before
    assert refused.code == grpc.StatusCode.ALREADY_EXISTS
    assert key in refused.message
    assert len(stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id)).grants) == 1


def test_revoke_replayed_under_its_key_returns_the_first_result_and_the_key_stays_bound(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, buckets: tuple[str, str]
) -> None:
    granted = grant(stub, instance_id, buckets[0], prefix="a/").grant
    other = grant(stub, instance_id, buckets[0], prefix="b/").grant
    key = f"undo-{instance_id}"
    request = pb.RevokeAccessRequest(grant_id=granted.grant_id, idempotency_key=key)

    first = stub.RevokeAccess(request).grant
    events_after_first = _audit(stub, instance_id)
    replayed = stub.RevokeAccess(request).grant
    # Revoking a revoked grant changes nothing anyway; what only a remembered key explains is
    # that the same key on another grant's revoke is refused, leaving that grant alone...
    reused = refusal(
        lambda: stub.RevokeAccess(
            pb.RevokeAccessRequest(grant_id=other.grant_id, idempotency_key=key)
        )
    )
    other_after_reuse = stub.GetGrant(pb.GetGrantRequest(grant_id=other.grant_id))
    events_after_reuse = _audit(stub, instance_id)
    # ...while a key of its own revokes it.
    other_revoked = stub.RevokeAccess(
        pb.RevokeAccessRequest(grant_id=other.grant_id, idempotency_key=f"{key}-b")
    ).grant

    assert first.state == pb.GRANT_STATE_REVOKED
    assert replayed == first
    assert events_after_reuse == events_after_first
    revokes = [e.grant_id for e in events_after_first if e.action == "grant.revoke_requested"]
    assert revokes == [granted.grant_id]
    assert reused.code == grpc.StatusCode.ALREADY_EXISTS
    assert key in reused.message
    assert other_after_reuse == other
    assert other_revoked.state == pb.GRANT_STATE_REVOKED


def test_grant_replayed_under_its_key_after_a_revoke_returns_the_first_grant_not_a_new_one(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    # Once the first grant is revoked, an identical request without the key would make a new
    # grant; only the remembered key makes the replay return the first one, and grant nothing.
    key = f"deploy-{instance_id}"
    first = grant(stub, instance_id, buckets[0], prefix="a/", idempotency_key=key).grant
    stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=first.grant_id))
    events_before = _audit(stub, instance_id)

    replayed = grant(stub, instance_id, buckets[0], prefix="a/", idempotency_key=key).grant
    access_after_replay = emulator.try_as_instance(instance_id, "PutObject", buckets[0], "a/x")
    events_after_replay = _audit(stub, instance_id)
    fresh = grant(stub, instance_id, buckets[0], prefix="a/", idempotency_key=f"{key}-2").grant

    assert replayed.grant_id == first.grant_id
    assert replayed.state == pb.GRANT_STATE_REVOKED
    assert access_after_replay == NO_CREDENTIALS
    assert events_after_replay == events_before
    assert fresh.grant_id != first.grant_id
    assert fresh.state == pb.GRANT_STATE_ACTIVE
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "a/x") == ALLOWED
    listed = stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id)).grants
    assert [g.grant_id for g in listed] == [first.grant_id, fresh.grant_id]


def test_dry_run_reports_policy_and_plan_and_writes_nothing(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    response = grant(stub, instance_id, buckets[0], pb.ACCESS_UPLOAD, "in/", dry_run=True)

    name = f"accessbroker-{instance_id}"
    assert list(response.planned_changes) == [
        f"create role {name}",
        f"put inline policy accessbroker-grants on role {name}",
        f"create instance profile {name}",
        f"add role {name} to instance profile {name}",
        f"associate instance profile {name} with instance {instance_id}",
    ]
    statements = json.loads(response.policy_document)["Statement"]
    assert {a for s in statements for a in s["Action"]} == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:ListBucketMultipartUploads",
    }
    assert not aws_role_exists(emulator, instance_id)
    assert aws_associations(emulator, instance_id) == []
    assert list(stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id)).grants) == []
    assert _audit(stub, instance_id) == []


def test_dry_run_on_a_granted_instance_plans_only_the_policy_change(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, buckets: tuple[str, str]
) -> None:
    grant(stub, instance_id, buckets[0], pb.ACCESS_UPLOAD, "in/")

    response = grant(stub, instance_id, buckets[1], pb.ACCESS_READ, dry_run=True)

    assert len(response.planned_changes) == 1
    assert response.planned_changes[0].startswith("put inline policy")


def test_audit_trail_records_each_change_and_pages(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, buckets: tuple[str, str]
) -> None:
    granted = grant(stub, instance_id, buckets[0]).grant
    stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=granted.grant_id, reason="done"))

    actions = [e.action for e in _audit(stub, instance_id)]
    pages, token = [], ""
    while True:
        request = pb.ListAuditEventsRequest(instance_id=instance_id, page_size=4, page_token=token)
        page = stub.ListAuditEvents(request)
        pages.append([e.action for e in page.events])
        token = page.next_page_token
        if not token:
            break
    for_grant = stub.ListAuditEvents(pb.ListAuditEventsRequest(grant_id=granted.grant_id)).events

    assert actions == [
        "grant.requested",
        "aws.create_role",
        "aws.put_policy",
        "aws.create_profile",
        "aws.add_role_to_profile",
        "aws.associate",
        "grant.active",
        "grant.revoke_requested",
        "aws.disassociate",
        "aws.remove_role_from_profile",
        "aws.delete_profile",
        "aws.delete_policy",
        "aws.delete_role",
        "grant.revoked",
    ]
    assert [a for page in pages for a in page] == actions
    assert all(len(page) <= 4 for page in pages)
    assert [e.action for e in for_grant] == [
        "grant.requested",
        "grant.active",
        "grant.revoke_requested",
        "grant.revoked",
    ]
    assert json.loads(for_grant[2].detail)["reason"] == "done"
    assert all(e.actor == "anonymous" and e.outcome == "success" for e in for_grant)


def test_rejected_request_is_audited(
    stub: broker_pb2_grpc.AccessBrokerStub, buckets: tuple[str, str]
) -> None:
    missing = "i-0fedcba9876543210"
    refusal(lambda: grant(stub, missing, buckets[0]))

    events = _audit(stub, missing)

    assert [(e.action, e.outcome) for e in events] == [("grant.rejected", "denied")]
    assert missing in json.loads(events[0].detail)["reason"]


def test_list_grants_filters_and_pages(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, buckets: tuple[str, str]
) -> None:
    ids = [grant(stub, instance_id, buckets[0], prefix=f"p{n}/").grant.grant_id for n in range(5)]
    stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=ids[0]))

    seen, token = [], ""
    while True:
        request = pb.ListGrantsRequest(instance_id=instance_id, page_size=2, page_token=token)
        page = stub.ListGrants(request)
        seen += [g.grant_id for g in page.grants]
        token = page.next_page_token
        if not token:
            break
    active = stub.ListGrants(
        pb.ListGrantsRequest(instance_id=instance_id, state=pb.GRANT_STATE_ACTIVE)
    ).grants
    other_bucket = stub.ListGrants(
        pb.ListGrantsRequest(instance_id=instance_id, bucket=buckets[1])
    ).grants
    bad_token = pb.ListGrantsRequest(page_token="not-a-token")

    assert seen == ids
    assert [g.grant_id for g in active] == ids[1:]
    assert list(other_bucket) == []
    assert refusal(lambda: stub.ListGrants(bad_token)).code == grpc.StatusCode.INVALID_ARGUMENT
