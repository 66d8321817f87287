"""grant_access over fakes: what it writes to AWS and the database, and what it refuses."""

import json
from datetime import timedelta

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.audit import Outcome
from broker.domain.errors import (
    ForeignProfile,
    ForeignRole,
    IdempotencyConflict,
    InstanceNotFound,
    InvalidRequest,
    PolicyTooLarge,
)
from broker.domain.grants import InstanceResources
from broker.domain.policy import render
from broker.domain.trust import EC2_TRUST_POLICY
from tests.unit.service.fakes import (
    INSTANCE,
    POLICY,
    PROFILE_ARN,
    ROLE,
    ROLE_ARN,
    START,
    FakeRole,
    World,
    grant_command,
    policy_of,
    world,
)

FIRST_BUILD = [
    ("create_role", ROLE),
    ("put_role_policy", ROLE, POLICY),
    ("create_instance_profile", ROLE),
    ("add_role_to_instance_profile", ROLE, ROLE),
    ("associate", INSTANCE, ROLE),
]


def test_first_grant_builds_role_policy_profile_and_association(w: World) -> None:
    result = w.handle(grant_command("photos", Access.UPLOAD, prefix="in/"))

    assert w.aws.calls == FIRST_BUILD
    role = w.aws.roles[ROLE]
    assert role.trust == json.loads(EC2_TRUST_POLICY)
    assert role.trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert role.path == "/accessbroker/"
    assert role.tags == {
        "managed-by": "accessbroker",
        "accessbroker:instance-id": INSTANCE,
        "accessbroker:region": "us-east-1",
    }
    assert role.policies == {POLICY: policy_of(("photos", "in/", Access.UPLOAD))}
    profile = w.aws.profiles[ROLE]
    assert (profile.path, profile.roles, profile.tags) == ("/accessbroker/", [ROLE], role.tags)
    association = w.aws.associations[INSTANCE]
    assert association.profile_arn == PROFILE_ARN

    grant = result.grant
    assert grant.state is GrantState.ACTIVE
    assert grant.resources == InstanceResources(
        ROLE, ROLE_ARN, ROLE, PROFILE_ARN, association.association_id
    )
    assert w.grant_of(grant.grant_id) == grant
    assert result.policy_document == render(policy_of(("photos", "in/", Access.UPLOAD)))


def test_first_grant_audits_request_each_aws_step_and_activation(w: World) -> None:
    grant = w.handle(grant_command(actor="alice")).grant

    events = w.db.snapshot().audit
    assert [e.action for e in events] == [
        "grant.requested",
        "aws.create_role",
        "aws.put_policy",
        "aws.create_profile",
        "aws.add_role_to_profile",
        "aws.associate",
        "grant.active",
    ]
    assert {e.actor for e in events} == {"alice"}
    assert {e.instance_id for e in events} == {INSTANCE}
    assert events[0].grant_id == events[-1].grant_id == grant.grant_id
    assert events[1].detail == {"change": f"create role {ROLE}", "region": "us-east-1"}
    assert events[-1].detail["state"] == "active"


def test_grant_records_times_and_requester(w: World) -> None:
    grant = w.handle(
        grant_command(ttl=timedelta(hours=2), reason="nightly backup", actor="bob")
    ).grant

    assert (grant.created_at, grant.expires_at) == (START, START + timedelta(hours=2))
    assert (grant.requested_by, grant.reason) == ("bob", "nightly backup")


def test_second_grant_reuses_role_and_profile_and_puts_the_merged_policy(w: World) -> None:
    first = w.handle(grant_command("photos", Access.UPLOAD)).grant
    w.aws.calls.clear()

    second = w.handle(grant_command("logs", Access.READ, prefix="app/")).grant

    assert w.aws.calls == [("put_role_policy", ROLE, POLICY)]
    assert w.aws.roles[ROLE].policies[POLICY] == policy_of(
        ("photos", "", Access.UPLOAD), ("logs", "app/", Access.READ)
    )
    assert second.state is GrantState.ACTIVE
    assert second.resources == w.grant_of(first.grant_id).resources
    assert w.grant_of(first.grant_id).state is GrantState.ACTIVE


def test_identical_grant_returns_the_existing_grant_without_writing(w: World) -> None:
    first = w.handle(grant_command()).grant
    calls, audit = list(w.aws.calls), w.db.audit_actions()

    again = w.handle(grant_command(reason="asked twice", actor="carol"))

    assert again.grant == w.grant_of(first.grant_id)
    assert again.grant.grant_id == first.grant_id
    assert w.aws.calls == calls
    assert w.db.audit_actions() == audit
    assert len(w.db.grants()) == 1


def test_same_idempotency_key_and_request_returns_the_first_grant(w: World) -> None:
    first = w.handle(grant_command(idempotency_key="k-1")).grant
    calls = list(w.aws.calls)

    again = w.handle(grant_command(idempotency_key="k-1")).grant

    assert again == w.grant_of(first.grant_id)
    assert w.aws.calls == calls
    assert len(w.db.grants()) == 1


def test_same_idempotency_key_for_another_request_is_refused_writing_nothing(w: World) -> None:
    w.handle(grant_command("photos", idempotency_key="k-1"))
    calls, before = list(w.aws.calls), w.db.snapshot()

    with pytest.raises(IdempotencyConflict, match="k-1"):
        w.handle(grant_command("other-bucket", idempotency_key="k-1"))

    assert w.aws.calls == calls
    assert w.db.snapshot() == before


def test_idempotency_key_is_remembered_for_an_identical_existing_grant(w: World) -> None:
    """A keyed retry of a request that matched an existing grant stays bound to it."""
    first = w.handle(grant_command("photos")).grant
    w.handle(grant_command("photos", idempotency_key="k-2"))

    with pytest.raises(IdempotencyConflict):
        w.handle(grant_command("elsewhere", idempotency_key="k-2"))
    assert w.handle(grant_command("photos", idempotency_key="k-2")).grant.grant_id == (
        first.grant_id
    )


def test_dry_run_writes_nothing_and_reports_the_planned_changes(w: World) -> None:
    result = w.handle(grant_command("photos", dry_run=True))

    assert result.planned_changes == (
        f"create role {ROLE}",
        f"put inline policy {POLICY} on role {ROLE}",
        f"create instance profile {ROLE}",
        f"add role {ROLE} to instance profile {ROLE}",
        f"associate instance profile {ROLE} with instance {INSTANCE}",
    )
    assert result.policy_document == render(policy_of(("photos", "", Access.UPLOAD)))
    assert (result.grant.grant_id, result.grant.state) == ("", GrantState.PENDING)
    assert w.aws.calls == []
    assert w.db.grants() == []
    assert w.db.audit_actions() == []
    assert w.db.commits == 0


def test_dry_run_next_to_an_existing_grant_plans_only_the_policy(w: World) -> None:
    w.handle(grant_command("photos"))
    calls, before = list(w.aws.calls), w.db.snapshot()

    result = w.handle(grant_command("logs", Access.LIST, dry_run=True))

    assert result.planned_changes == (f"put inline policy {POLICY} on role {ROLE}",)
    assert json.loads(result.policy_document) == policy_of(
        ("photos", "", Access.UPLOAD), ("logs", "", Access.LIST)
    )
    assert w.aws.calls == calls
    assert w.db.snapshot() == before


def test_invalid_request_names_every_bad_field_and_writes_nothing(w: World) -> None:
    command = grant_command(
        "Bad_Bucket",
        None,
        instance_id="i-nope",
        prefix="/logs*",
        ttl=timedelta(0),
        reason="\x00",
    )
    with pytest.raises(InvalidRequest) as raised:
        w.handle(command)

    fields = {v.field for v in raised.value.violations}
    assert fields == {"instance_id", "bucket", "prefix", "access", "ttl", "reason"}
    assert w.aws.calls == []
    assert w.db.commits == 0


def test_invalid_request_reports_a_bad_idempotency_key_with_the_other_fields(w: World) -> None:
    with pytest.raises(InvalidRequest) as raised:
        w.handle(grant_command("Bad_Bucket", idempotency_key="k" * 129))

    assert {v.field for v in raised.value.violations} == {"bucket", "idempotency_key"}
    assert w.db.commits == 0


def test_unknown_instance_is_refused_and_only_the_refusal_is_audited() -> None:
    w = world()  # no instance exists

    with pytest.raises(InstanceNotFound, match=INSTANCE):
        w.handle(grant_command("photos", prefix="a/", actor="dave"))

    assert w.aws.calls == []
    assert w.db.grants() == []
    [event] = w.db.snapshot().audit
    assert (event.action, event.outcome, event.actor) == ("grant.rejected", Outcome.DENIED, "dave")
    assert event.instance_id == INSTANCE
    assert event.detail["bucket"] == "photos"
    assert event.detail["access"] == "upload"


@pytest.mark.parametrize(
    "foreign_arn",
    [
        "arn:aws:iam::123456789012:instance-profile/web-servers",
        # The broker's name on another path is still not the broker's profile.
        f"arn:aws:iam::123456789012:instance-profile/other/{ROLE}",
    ],
)
def test_foreign_association_is_refused_naming_the_profile(w: World, foreign_arn: str) -> None:
    w.aws.associate_foreign(INSTANCE, foreign_arn)
    associations = dict(w.aws.associations)

    with pytest.raises(ForeignProfile) as raised:
        w.handle(grant_command())

    assert raised.value.profile_arn == foreign_arn
    assert foreign_arn in str(raised.value)
    assert w.aws.calls == []
    assert w.aws.associations == associations
    assert (w.aws.roles, w.aws.profiles) == ({}, {})
    assert w.db.grants() == []
    assert w.db.audit_actions() == ["grant.rejected"]


def test_unmanaged_role_with_the_brokers_name_is_left_alone(w: World) -> None:
    w.aws.roles[ROLE] = FakeRole(ROLE, "/accessbroker/", {}, {"team": "web"})

    with pytest.raises(ForeignRole):
        w.handle(grant_command())

    assert w.aws.calls == []
    assert w.aws.roles[ROLE].policies == {}
    assert w.db.audit_actions() == ["grant.rejected"]


def test_a_role_found_by_create_role_but_not_the_brokers_is_left_alone(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone else's role that IAM's reads do not show yet: CreateRole finds it there.
    w.aws.roles[ROLE] = FakeRole(ROLE, "/accessbroker/", {}, {"team": "web"})
    monkeypatch.setattr(w.aws, "get_role", lambda name: None)

    with pytest.raises(ForeignRole, match=f"role {ROLE} exists but is not tagged"):
        w.handle(grant_command())

    assert w.aws.calls == []
    assert w.aws.roles[ROLE].policies == {}


def fill_policy(w: World) -> int:
    """Grants long prefixes until the next one would not fit; returns how many fit."""
    for n in range(200):
        try:
            w.handle(grant_command(prefix=f"{'p' * 200}/{n:03d}/"))
        except PolicyTooLarge:
            return n
    raise AssertionError("the policy never filled up")


def test_grant_that_would_overflow_the_policy_is_refused_writing_nothing(w: World) -> None:
    granted = fill_policy(w)
    assert granted > 20, "many grants fit before the limit"
    before, calls = w.db.snapshot(), list(w.aws.calls)

    with pytest.raises(PolicyTooLarge) as raised:
        w.handle(grant_command("another-bucket", Access.READ_WRITE, prefix="x/"))

    assert raised.value.size > raised.value.limit == 10_240
    assert w.aws.calls == calls
    assert w.db.snapshot().grants == before.grants
    assert w.db.audit_actions() == [*(e.action for e in before.audit), "grant.rejected"]
    assert len(w.db.grants()) == granted
    assert {g.state for g in w.db.grants()} == {GrantState.ACTIVE}
    live = [(g.scope.bucket, g.scope.prefix, g.scope.access) for g in w.db.grants()]
    assert w.aws.roles[ROLE].policies[POLICY] == policy_of(*live)
