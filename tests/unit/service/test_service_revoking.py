"""revoke_access over fakes: recomputing the policy, tearing down, and what it refuses."""

import uuid

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.errors import (
    AwsRejected,
    GrantNotFound,
    IdempotencyConflict,
    InvalidRequest,
    WrongState,
)
from broker.domain.grants import InstanceResources
from broker.service.commands import DescribeInstanceAccess, RevokeAccess
from tests.unit.service.fakes import (
    INSTANCE,
    POLICY,
    ROLE,
    World,
    grant_command,
    policy_of,
)


def test_revoking_one_of_two_grants_puts_the_recomputed_policy(w: World) -> None:
    photos = w.handle(grant_command("photos", Access.UPLOAD)).grant
    logs = w.handle(grant_command("logs", Access.READ)).grant
    w.aws.calls.clear()
    audit_before = len(w.db.audit_actions())

    revoked = w.handle(RevokeAccess(grant_id=photos.grant_id, reason="done", actor="erin")).grant

    assert revoked.state is GrantState.REVOKED
    assert w.aws.calls == [("put_role_policy", ROLE, POLICY)]
    assert w.aws.roles[ROLE].policies[POLICY] == policy_of(("logs", "", Access.READ))
    assert w.grant_of(logs.grant_id).state is GrantState.ACTIVE
    assert w.db.audit_actions()[audit_before:] == [
        "grant.revoke_requested",
        "aws.put_policy",
        "grant.revoked",
    ]
    requested = w.db.snapshot().audit[audit_before]
    assert (requested.actor, requested.detail["reason"]) == ("erin", "done")


def test_revoking_the_last_grant_tears_everything_down(w: World) -> None:
    grant = w.handle(grant_command()).grant
    association_id = grant.resources.association_id
    w.aws.calls.clear()

    revoked = w.handle(RevokeAccess(grant_id=grant.grant_id)).grant

    assert revoked.state is GrantState.REVOKED
    assert w.aws.calls == [
        ("disassociate", association_id),
        ("remove_role_from_instance_profile", ROLE, ROLE),
        ("delete_instance_profile", ROLE),
        ("delete_role_policy", ROLE, POLICY),
        ("delete_role", ROLE),
    ]
    assert (w.aws.roles, w.aws.profiles, w.aws.associations) == ({}, {}, {})
    access = w.handle(DescribeInstanceAccess(instance_id=INSTANCE))
    assert (access.resources, access.policy_document, access.grants) == (
        InstanceResources(),
        "",
        [],
    )


def test_revoking_twice_is_harmless(w: World) -> None:
    grant = w.handle(grant_command()).grant
    first = w.handle(RevokeAccess(grant_id=grant.grant_id)).grant
    calls, audit = list(w.aws.calls), w.db.audit_actions()

    second = w.handle(RevokeAccess(grant_id=grant.grant_id)).grant

    assert second == first
    assert second.state is GrantState.REVOKED
    assert w.aws.calls == calls
    assert w.db.audit_actions() == audit


def test_granting_again_after_a_revocation_builds_afresh(w: World) -> None:
    grant = w.handle(grant_command()).grant
    w.handle(RevokeAccess(grant_id=grant.grant_id))
    w.aws.calls.clear()

    again = w.handle(grant_command()).grant

    assert again.grant_id != grant.grant_id
    assert again.state is GrantState.ACTIVE
    assert [c[0] for c in w.aws.calls] == [
        "create_role",
        "put_role_policy",
        "create_instance_profile",
        "add_role_to_instance_profile",
        "associate",
    ]


def test_revoking_an_unknown_grant_is_not_found(w: World) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(GrantNotFound, match=unknown):
        w.handle(RevokeAccess(grant_id=unknown))
    assert w.db.commits == 0


def test_revoke_validates_every_field(w: World) -> None:
    with pytest.raises(InvalidRequest) as raised:
        w.handle(RevokeAccess(grant_id="not-a-grant", reason="\x07", idempotency_key="\x00"))

    assert {v.field for v in raised.value.violations} == {"grant_id", "reason", "idempotency_key"}


def test_a_failed_grant_cannot_be_revoked(w: World) -> None:
    w.aws.fail("put_role_policy", AwsRejected("AccessDenied"))
    with pytest.raises(AwsRejected):
        w.handle(grant_command())
    [failed] = w.db.grants()
    assert failed.state is GrantState.FAILED

    with pytest.raises(WrongState):
        w.handle(RevokeAccess(grant_id=failed.grant_id))
    assert w.grant_of(failed.grant_id).state is GrantState.FAILED


def test_revoke_idempotency_key_binds_to_the_first_request(w: World) -> None:
    photos = w.handle(grant_command("photos")).grant
    logs = w.handle(grant_command("logs")).grant
    w.handle(RevokeAccess(grant_id=photos.grant_id, idempotency_key="r-1"))
    audit = w.db.audit_actions()

    assert w.handle(RevokeAccess(grant_id=photos.grant_id, idempotency_key="r-1")).grant.state is (
        GrantState.REVOKED
    )
    with pytest.raises(IdempotencyConflict):
        w.handle(RevokeAccess(grant_id=logs.grant_id, idempotency_key="r-1"))

    assert w.grant_of(logs.grant_id).state is GrantState.ACTIVE
    assert w.db.audit_actions() == audit


def test_a_revoked_grant_holds_no_resources(w: World) -> None:
    granted = w.handle(grant_command("photos")).grant
    assert granted.resources.association_id

    revoked = w.handle(RevokeAccess(grant_id=granted.grant_id)).grant

    assert revoked.state is GrantState.REVOKED
    assert revoked.resources == InstanceResources()
