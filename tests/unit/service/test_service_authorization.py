"""The use cases under an access policy: refusals audited, ownership of grants, admins."""

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from broker.bootstrap import build_bus
from broker.domain.access import Access, GrantState
from broker.domain.audit import AuditEvent, Outcome
from broker.domain.authorization import AccessPolicy, Decision, Rule
from broker.domain.errors import (
    AwsUnavailable,
    InstanceNotFound,
    InvalidRequest,
    PermissionDenied,
)
from broker.domain.grants import Grant
from broker.service.commands import (
    DescribeInstanceAccess,
    ExplainAccess,
    ExtendGrant,
    GetGrant,
    ListAuditEvents,
    ListGrants,
    RevokeAccess,
    WatchAuditEvents,
)
from tests.unit.service.fakes import (
    INSTANCE,
    OTHER_INSTANCE,
    START,
    RecordingTelemetry,
    World,
    grant_command,
    world,
)

DAY = timedelta(days=1)
POLICY = AccessPolicy(
    admins=frozenset({"admin"}),
    deny_buckets=("audit-*",),
    rules=(
        Rule(1, ("alice", "bob"), ("photos", "videos"), frozenset(Access), max_ttl=DAY),
        Rule(2, ("carol",), ("*",), frozenset({Access.READ}), instance_tags={"team": "data"}),
    ),
)


@pytest.fixture
def w() -> World:
    return world(INSTANCE, OTHER_INSTANCE).with_policy(POLICY)


def grant(w: World, actor: str, bucket: str = "photos", **options: Any) -> Grant:
    return w.handle(grant_command(bucket, actor=actor, **options)).grant


def denials(w: World) -> list[AuditEvent]:
    return [e for e in w.db.snapshot().audit if e.outcome is Outcome.DENIED]


# --- granting


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_refused_grant_is_permission_denied_audited_and_changes_nothing(
    w: World, dry_run: bool
) -> None:
    command = grant_command("secrets", Access.UPLOAD, actor="alice", prefix="x/", dry_run=dry_run)

    with pytest.raises(PermissionDenied, match="rule 1: bucket secrets is not one of") as refused:
        w.handle(command)

    assert w.aws.calls == []
    assert w.db.grants() == []
    [event] = w.db.snapshot().audit
    assert (event.action, event.outcome, event.actor) == ("grant.rejected", Outcome.DENIED, "alice")
    assert (event.instance_id, event.detail["reason"]) == (INSTANCE, str(refused.value))
    assert event.detail | {"reason": ""} == {
        "reason": "",
        "region": "us-east-1",
        "bucket": "secrets",
        "prefix": "x/",
        "access": "upload",
    }


def test_an_allowed_grant_records_what_allowed_it(w: World) -> None:
    granted = grant(w, "alice", ttl=timedelta(hours=2))

    requested = next(e for e in w.db.snapshot().audit if e.action == "grant.requested")
    assert requested.detail["authorization"] == "allowed by rule 1"
    assert granted.state is GrantState.ACTIVE
    assert granted.expires_at == START + timedelta(hours=2)


def test_a_grant_without_a_ttl_gets_the_rules_max_rather_than_no_expiry(w: World) -> None:
    assert grant(w, "bob").expires_at == START + DAY


def test_a_ttl_over_the_rules_max_is_refused_not_shortened(w: World) -> None:
    with pytest.raises(PermissionDenied, match="ttl 2d is over the rule's max of 1d"):
        grant(w, "alice", ttl=2 * DAY)

    assert w.db.audit_actions() == ["grant.rejected"]


def test_instance_tags_are_read_from_ec2_when_a_rule_names_them(w: World) -> None:
    with pytest.raises(PermissionDenied, match="does not carry the tags team=data"):
        grant(w, "carol", "reports", access=Access.READ)

    w.aws.instance_tags[INSTANCE] = {"team": "data", "env": "prod"}

    assert grant(w, "carol", "reports", access=Access.READ).requested_by == "carol"


def test_a_tag_rule_on_an_instance_that_does_not_exist_is_not_found_and_audited(w: World) -> None:
    with pytest.raises(InstanceNotFound):
        grant(w, "carol", "reports", access=Access.READ, instance_id="i-0aaaaaaaaaaaaaaaa")

    assert [(e.action, e.outcome) for e in w.db.snapshot().audit] == [
        ("grant.rejected", Outcome.DENIED)
    ]


def test_admins_may_grant_anything_except_a_denied_bucket(w: World) -> None:
    granted = grant(w, "admin", "anything", access=Access.READ_WRITE, ttl=30 * DAY)

    assert granted.expires_at == START + 30 * DAY
    with pytest.raises(PermissionDenied, match="bucket audit-trail is denied by 'audit-\\*'"):
        grant(w, "admin", "audit-trail")


def test_a_reloaded_policy_decides_the_next_request(w: World) -> None:
    with pytest.raises(PermissionDenied):
        grant(w, "dave")

    w.policy.replace(replace(POLICY, admins=frozenset({"admin", "dave"})))

    assert grant(w, "dave").requested_by == "dave"


def test_another_callers_identical_grant_is_not_extended_its_own_is(w: World) -> None:
    alices = grant(w, "alice", ttl=timedelta(hours=1))

    bobs = grant(w, "bob", ttl=timedelta(hours=5))
    again = grant(w, "alice", ttl=timedelta(hours=2))

    assert bobs.grant_id != alices.grant_id
    assert bobs.requested_by == "bob"
    assert again.grant_id == alices.grant_id
    assert again.expires_at == START + timedelta(hours=2)


def test_another_callers_broader_grant_does_not_cover_a_request(w: World) -> None:
    alices = grant(w, "alice", prefix="")

    result = w.handle(grant_command("photos", prefix="in/", actor="bob"))
    own = w.handle(grant_command("photos", prefix="in/", actor="alice"))

    assert result.covered_by == ""
    assert result.grant.requested_by == "bob"
    assert own.covered_by == alices.grant_id


# --- ownership


def test_only_its_requester_or_an_admin_may_revoke_a_grant(w: World) -> None:
    alices = grant(w, "alice")

    with pytest.raises(PermissionDenied, match=f"grant {alices.grant_id} was requested by ano"):
        w.handle(RevokeAccess(grant_id=alices.grant_id, actor="bob"))

    assert w.db.grants()[0].state is GrantState.ACTIVE
    [denied] = denials(w)
    assert (denied.action, denied.actor, denied.grant_id) == (
        "grant.revoke_denied",
        "bob",
        alices.grant_id,
    )
    assert denied.instance_id == INSTANCE
    revoked = w.handle(RevokeAccess(grant_id=alices.grant_id, actor="admin")).grant
    assert revoked.state is GrantState.REVOKED


def test_a_requester_revokes_its_own_grant_even_once_its_rule_is_gone(w: World) -> None:
    alices = grant(w, "alice")
    w.policy.replace(AccessPolicy())

    assert w.handle(RevokeAccess(grant_id=alices.grant_id, actor="alice")).grant.state is (
        GrantState.REVOKED
    )


def test_extending_needs_ownership_and_stays_within_the_rules_max(w: World) -> None:
    alices = grant(w, "alice", ttl=timedelta(hours=1))

    with pytest.raises(PermissionDenied, match="requested by another caller"):
        w.handle(ExtendGrant(grant_id=alices.grant_id, ttl=timedelta(hours=2), actor="bob"))
    with pytest.raises(PermissionDenied, match="ttl 2d is over the rule's max of 1d"):
        w.handle(ExtendGrant(grant_id=alices.grant_id, ttl=2 * DAY, actor="alice"))
    extended = w.handle(ExtendGrant(grant_id=alices.grant_id, ttl=DAY, actor="alice"))
    by_admin = w.handle(ExtendGrant(grant_id=alices.grant_id, ttl=3 * DAY, actor="admin"))

    assert extended.expires_at == START + DAY
    assert by_admin.expires_at == START + 3 * DAY
    assert [e.action for e in denials(w)] == ["grant.extend_denied", "grant.extend_denied"]
    assert {e.grant_id for e in denials(w)} == {alices.grant_id}


def test_a_caller_reads_only_its_own_grants_unless_admin(w: World) -> None:
    alices = grant(w, "alice")
    bobs = grant(w, "bob", "videos", instance_id=OTHER_INSTANCE)

    with pytest.raises(PermissionDenied):
        w.handle(GetGrant(grant_id=alices.grant_id, actor="bob"))
    assert w.handle(GetGrant(grant_id=alices.grant_id, actor="alice")) == alices
    assert w.handle(GetGrant(grant_id=alices.grant_id, actor="admin")) == alices
    assert [e.action for e in denials(w)] == ["grant.read_denied"]

    def listed(actor: str) -> list[str]:
        return [
            g.grant_id for g in w.handle(ListGrants(page_size=0, after=None, actor=actor)).items
        ]

    assert listed("bob") == [bobs.grant_id]
    assert listed("carol") == []
    assert listed("admin") == [alices.grant_id, bobs.grant_id]


def test_an_instances_description_shows_a_caller_only_its_own_grants(w: World) -> None:
    alices = grant(w, "alice")
    assert (
        w.handle(DescribeInstanceAccess(instance_id=INSTANCE, actor="alice")).policy_document != ""
    )

    bobs = grant(w, "bob", "videos")
    for_alice = w.handle(DescribeInstanceAccess(instance_id=INSTANCE, actor="alice"))
    for_admin = w.handle(DescribeInstanceAccess(instance_id=INSTANCE, actor="admin"))

    assert for_alice.grants == [alices]
    assert for_alice.policy_document == ""  # it would show bob's bucket
    assert for_alice.resources == for_admin.resources
    assert [g.grant_id for g in for_admin.grants] == [alices.grant_id, bobs.grant_id]
    assert "videos" in for_admin.policy_document


def test_a_grant_of_anothers_still_being_revoked_keeps_the_policy_hidden(w: World) -> None:
    grant(w, "alice")
    bobs = grant(w, "bob", "videos")
    w.aws.fail("put_role_policy", AwsUnavailable("AWS PutRolePolicy failed: Throttling"))
    with pytest.raises(AwsUnavailable):
        w.handle(RevokeAccess(grant_id=bobs.grant_id, actor="bob"))

    # Bob's grant is no longer live, but AWS (and the record) still hold his bucket.
    assert (
        "videos"
        in w.handle(DescribeInstanceAccess(instance_id=INSTANCE, actor="admin")).policy_document
    )
    assert (
        w.handle(DescribeInstanceAccess(instance_id=INSTANCE, actor="alice")).policy_document == ""
    )


def test_the_audit_trail_is_for_admins_only(w: World) -> None:
    grant(w, "alice")

    with pytest.raises(PermissionDenied, match="only an admin may read the audit trail"):
        w.handle(ListAuditEvents(page_size=0, after=None, actor="alice"))
    with pytest.raises(PermissionDenied):
        w.handle(WatchAuditEvents(actor="alice"))

    assert [e.action for e in denials(w)] == ["audit.read_denied", "audit.read_denied"]
    assert w.handle(ListAuditEvents(page_size=0, after=None, actor="admin")).items
    assert w.handle(WatchAuditEvents(after=0, actor="admin")).start == 0


# --- explaining


def explain(w: World, actor: str = "admin", **fields: Any) -> Decision:
    values: dict[str, Any] = {
        "identity": "alice",
        "instance_id": INSTANCE,
        "bucket": "photos",
        "access": Access.UPLOAD,
    }
    return w.handle(ExplainAccess(**(values | fields), actor=actor))


def test_an_admin_is_told_the_decision_and_nothing_is_granted(w: World) -> None:
    assert explain(w) == Decision(True, "allowed by rule 1", 1, DAY)
    assert explain(w, bucket="audit-x") == Decision(False, "bucket audit-x is denied by 'audit-*'")
    assert explain(w, identity="carol", access=Access.READ).reason.endswith("tags team=data")
    assert w.db.grants() == []
    assert w.aws.calls == []


def test_the_anonymous_caller_of_auth_mode_none_can_be_asked_about(w: World) -> None:
    assert explain(w, identity="anonymous").reason == (
        "no rule matched: no rule is for identity anonymous"
    )


def test_only_admins_may_ask_for_explanations(w: World) -> None:
    with pytest.raises(PermissionDenied, match="only an admin may explain access decisions"):
        explain(w, actor="alice")

    assert [e.action for e in denials(w)] == ["access.explain_denied"]


def test_explaining_validates_the_request_and_the_instance(w: World) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        explain(w, identity="", bucket="Bad_Bucket")
    with pytest.raises(InstanceNotFound):
        explain(w, instance_id="i-0aaaaaaaaaaaaaaaa")

    assert {v.field for v in invalid.value.violations} == {"identity", "bucket"}


def test_each_decision_of_the_policy_is_measured(w: World) -> None:
    decisions = RecordingTelemetry()
    bus = build_bus(replace(w.ports, telemetry=decisions), w.options)
    alices = bus.handle(grant_command("photos", actor="alice")).grant

    with pytest.raises(PermissionDenied):
        bus.handle(ExtendGrant(grant_id=alices.grant_id, ttl=timedelta(hours=2), actor="bob"))

    assert decisions.decisions == [("GrantAccess", True), ("ExtendGrant", False)]
