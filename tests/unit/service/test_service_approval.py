"""Access that needs approval, through the bus over fakes: a request waits with nothing in AWS;
named approvers (never the requester) decide; the last approval needed makes it a grant, carried
out at once with its ttl from then; one denial, the timeout, or a withdrawal ends it. Every step
is audited, and a repeat changes nothing."""

from dataclasses import replace
from datetime import timedelta

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.approval import ApprovalRule
from broker.domain.audit import AuditEvent, Outcome
from broker.domain.authorization import AccessPolicy, Rule
from broker.domain.errors import (
    AwsUnavailable,
    ForeignProfile,
    InvalidRequest,
    PermissionDenied,
    WrongState,
)
from broker.domain.grants import Grant
from broker.service.commands import (
    ApproveGrant,
    DenyGrant,
    ExpireGrants,
    ExtendGrant,
    FinishSettling,
    GetGrant,
    ListGrants,
    RevokeAccess,
)
from tests.unit.service.fakes import INSTANCE, ROLE, START, World, grant_command, world

HOUR = timedelta(hours=1)
TWO_OF = ApprovalRule(("alice", "bob", "sre-*"), required=2, timeout=4 * HOUR)
POLICY = AccessPolicy(
    admins=frozenset({"admin"}),
    rules=(
        Rule(1, ("team-data-*",), ("scratch",), frozenset(Access)),
        Rule(
            2, ("team-data-*",), ("prod-*",), frozenset(Access), max_ttl=8 * HOUR, approval=TWO_OF
        ),
    ),
)
REQUESTER = "team-data-etl"


@pytest.fixture
def w() -> World:
    return world(INSTANCE).with_policy(POLICY)


def request(w: World, ttl: timedelta | None = 4 * HOUR) -> Grant:
    return w.handle(grant_command("prod-data", Access.READ, actor=REQUESTER, ttl=ttl)).grant


def approve(
    w: World, grant: Grant, actor: str, reason: str = "", ttl: timedelta | None = None
) -> Grant:
    command = ApproveGrant(grant_id=grant.grant_id, actor=actor, reason=reason, ttl=ttl)
    return w.handle(command).grant


def events(w: World, action: str) -> list[AuditEvent]:
    return [e for e in w.db.snapshot().audit if e.action == action]


def test_a_request_waits_with_nothing_in_aws(w: World) -> None:
    waiting = request(w)

    assert waiting.state is GrantState.AWAITING_APPROVAL
    assert waiting.expires_at == START + 4 * HOUR  # when it lapses unanswered
    assert w.aws.roles == {} and w.aws.calls == []  # no write at all
    [asked] = events(w, "grant.approval_requested")
    assert asked.detail["approvers"] == ["alice", "bob", "sre-*"]
    assert asked.detail["required"] == 2


def test_what_a_rule_allows_without_approval_is_granted_at_once(w: World) -> None:
    granted = w.handle(grant_command("scratch", Access.READ, actor=REQUESTER)).grant

    assert granted.state is GrantState.ACTIVE and granted.approval is None


def test_asking_again_is_not_a_second_request(w: World) -> None:
    first = request(w)

    again = request(w)

    assert again.grant_id == first.grant_id
    assert len(events(w, "grant.approval_requested")) == 1


def test_the_last_approval_grants_with_the_ttl_from_then(w: World) -> None:
    waiting = request(w)
    w.clock.advance(HOUR)
    first = approve(w, waiting, "alice", reason="looks right")
    assert first.state is GrantState.AWAITING_APPROVAL and ROLE not in w.aws.roles

    w.clock.advance(HOUR)
    granted = approve(w, waiting, "sre-oncall")

    assert granted.state is GrantState.ACTIVE
    assert granted.expires_at == START + 2 * HOUR + 4 * HOUR
    assert ROLE in w.aws.roles
    assert [e.detail["approval"] for e in events(w, "grant.approved")] == ["1 of 2", "2 of 2"]
    assert events(w, "grant.approved")[0].detail["reason"] == "looks right"


def test_an_approver_counts_once(w: World) -> None:
    waiting = request(w)
    approve(w, waiting, "alice")

    again = w.handle(ApproveGrant(grant_id=waiting.grant_id, actor="alice"))

    assert again.grant.state is GrantState.AWAITING_APPROVAL
    assert again.notice == "alice already approved this request; it counts once (1 of 2 approvals)"
    assert len(events(w, "grant.approved")) == 1


def test_a_retried_last_approval_changes_nothing(w: World) -> None:
    waiting = request(w)
    approve(w, waiting, "alice")
    approve(w, waiting, "bob")

    retried = w.handle(ApproveGrant(grant_id=waiting.grant_id, actor="bob"))

    assert retried.grant.state is GrantState.ACTIVE and retried.notice
    assert len(events(w, "grant.approved")) == 2


@pytest.mark.parametrize("actor", [REQUESTER, "mallory", "admin"])
def test_only_the_rules_approvers_decide_never_the_requester(w: World, actor: str) -> None:
    waiting = request(w)

    with pytest.raises(PermissionDenied):
        approve(w, waiting, actor)
    with pytest.raises(PermissionDenied):
        w.handle(DenyGrant(grant_id=waiting.grant_id, actor=actor))

    assert w.grant_of(waiting.grant_id).state is GrantState.AWAITING_APPROVAL
    refused = events(w, "grant.decision_denied")
    assert len(refused) == 2 and all(e.outcome is Outcome.DENIED for e in refused)


def test_the_requester_is_never_an_approver_of_their_own_request(w: World) -> None:
    own = AccessPolicy(
        rules=(Rule(1, ("alice", "bob"), ("prod-*",), frozenset(Access), approval=TWO_OF),)
    )
    w = w.with_policy(own)
    waiting = w.handle(grant_command("prod-data", Access.READ, actor="alice")).grant

    with pytest.raises(PermissionDenied, match="never approves or denies their own request"):
        approve(w, waiting, "alice")


def test_an_approver_may_shorten_the_ttl_never_lengthen_it(w: World) -> None:
    waiting = request(w)

    with pytest.raises(InvalidRequest) as refused:
        approve(w, waiting, "alice", ttl=5 * HOUR)
    approve(w, waiting, "alice", ttl=HOUR)
    granted = approve(w, waiting, "bob")

    assert refused.value.violations[0].field == "ttl"
    assert granted.expires_at == START + HOUR


def test_one_denial_ends_it(w: World) -> None:
    waiting = request(w)
    approve(w, waiting, "alice")

    denied = w.handle(DenyGrant(grant_id=waiting.grant_id, actor="bob", reason="not this week"))

    assert denied.state is GrantState.DENIED
    assert denied.failure_reason == "denied by bob: not this week"
    with pytest.raises(WrongState):
        approve(w, waiting, "sre-oncall")
    assert w.aws.roles == {}
    [event] = events(w, "grant.denied")
    assert event.detail["reason"] == "not this week"


def test_an_unanswered_request_lapses_at_its_timeout(w: World) -> None:
    waiting = request(w)
    w.clock.advance(4 * HOUR - timedelta(seconds=1))
    w.handle(ExpireGrants())
    assert w.grant_of(waiting.grant_id).state is GrantState.AWAITING_APPROVAL

    w.clock.advance(timedelta(seconds=1))
    w.handle(ExpireGrants())

    lapsed = w.grant_of(waiting.grant_id)
    assert (lapsed.state, lapsed.failure_reason) == (GrantState.EXPIRED, "not approved in time")
    assert len(events(w, "grant.approval_expired")) == 1
    with pytest.raises(WrongState):
        approve(w, waiting, "alice")


def test_the_requester_withdraws_a_waiting_request(w: World) -> None:
    waiting = request(w)

    withdrawn = w.handle(RevokeAccess(grant_id=waiting.grant_id, actor=REQUESTER)).grant

    assert withdrawn.state is GrantState.REVOKED
    assert w.aws.calls == []
    with pytest.raises(WrongState):
        approve(w, waiting, "alice")


def test_the_last_approval_is_refused_when_the_policy_no_longer_allows_it(w: World) -> None:
    waiting = request(w)
    approve(w, waiting, "alice")
    w = w.with_policy(AccessPolicy(rules=POLICY.rules[:1]))

    with pytest.raises(PermissionDenied, match="the access policy no longer allows this request"):
        approve(w, waiting, "bob")

    assert w.grant_of(waiting.grant_id).state is GrantState.AWAITING_APPROVAL
    assert w.aws.roles == {}


def test_approvers_list_and_read_what_waits_for_them(w: World) -> None:
    waiting = request(w)

    for_alice = w.handle(ListGrants(actor="alice", awaiting_my_approval=True)).items
    for_mallory = w.handle(ListGrants(actor="mallory", awaiting_my_approval=True)).items
    read = w.handle(GetGrant(grant_id=waiting.grant_id, actor="alice"))
    approve(w, waiting, "alice")
    after = w.handle(ListGrants(actor="alice", awaiting_my_approval=True)).items

    assert [g.grant_id for g in for_alice] == [waiting.grant_id]
    assert for_mallory == [] and after == []
    assert read.grant_id == waiting.grant_id
    with pytest.raises(PermissionDenied):
        w.handle(GetGrant(grant_id=waiting.grant_id, actor="mallory"))


def test_requesters_list_their_waiting_requests_by_state(w: World) -> None:
    waiting = request(w)

    listed = w.handle(ListGrants(actor=REQUESTER, state=GrantState.AWAITING_APPROVAL)).items

    assert [g.grant_id for g in listed] == [waiting.grant_id]


def test_an_extension_never_bypasses_the_approvers(w: World) -> None:
    waiting = request(w, ttl=HOUR)
    approve(w, waiting, "alice")
    approve(w, waiting, "bob")

    with pytest.raises(PermissionDenied, match="needs approval"):
        w.handle(ExtendGrant(grant_id=waiting.grant_id, ttl=6 * HOUR, actor=REQUESTER))
    longer = request(w, ttl=6 * HOUR)

    assert longer.grant_id != waiting.grant_id
    assert longer.state is GrantState.AWAITING_APPROVAL


def test_a_dry_run_shows_the_policy_and_who_must_approve(w: World) -> None:
    result = w.handle(
        grant_command("prod-data", Access.READ, actor=REQUESTER, ttl=HOUR, dry_run=True)
    )

    assert result.grant.state is GrantState.AWAITING_APPROVAL
    assert result.grant.the_approval().approvers == ("alice", "bob", "sre-*")
    assert "prod-data" in result.policy_document
    assert w.db.grants() == []


def test_a_reload_decides_who_may_approve_and_how_many_must(w: World) -> None:
    waiting = request(w)
    approve(w, waiting, "alice")
    carol_and_dave = ApprovalRule(("carol", "dave"), required=2)
    reloaded = AccessPolicy(rules=(replace(POLICY.rules[1], approval=carol_and_dave),))
    w = w.with_policy(reloaded)

    with pytest.raises(PermissionDenied, match="bob is not an approver"):
        approve(w, waiting, "bob")
    by_carol = approve(w, waiting, "carol")
    granted = approve(w, waiting, "dave")

    assert by_carol.state is GrantState.AWAITING_APPROVAL  # alice no longer counts
    assert granted.state is GrantState.ACTIVE


def test_a_request_past_its_time_is_not_approved_even_before_the_sweep(w: World) -> None:
    waiting = request(w)
    w.clock.advance(5 * HOUR)

    with pytest.raises(WrongState, match="not approved in time"):
        approve(w, waiting, "alice")
    with pytest.raises(WrongState, match="not approved in time"):
        w.handle(DenyGrant(grant_id=waiting.grant_id, actor="bob"))
    assert w.aws.roles == {}


def test_the_ttl_counts_from_activation(w: World) -> None:
    waiting = request(w, ttl=HOUR)
    approve(w, waiting, "alice")
    w.aws.fail("create_role", AwsUnavailable("Throttling"))
    with pytest.raises(AwsUnavailable):
        approve(w, waiting, "bob")
    assert w.grant_of(waiting.grant_id).expires_at is None  # pending: not active yet

    w.clock.advance(3 * HOUR)
    w.handle(FinishSettling())

    active = w.grant_of(waiting.grant_id)
    assert active.state is GrantState.ACTIVE
    assert active.expires_at == START + 3 * HOUR + HOUR


def test_a_request_that_could_never_be_approved_is_refused(w: World) -> None:
    only_two = ApprovalRule(("team-data-etl", "bob"), required=2)
    w = w.with_policy(AccessPolicy(rules=(replace(POLICY.rules[1], approval=only_two),)))

    with pytest.raises(PermissionDenied, match="could never be approved"):
        request(w)
    assert w.db.grants() == []


def test_the_last_approval_is_refused_when_the_instance_cannot_carry_it(w: World) -> None:
    waiting = request(w)
    approve(w, waiting, "alice")
    profile = w.aws.create_instance_profile("TeamProfile", "/", {})
    w.aws.associate_foreign(INSTANCE, profile.arn)

    with pytest.raises(ForeignProfile):
        approve(w, waiting, "bob")

    assert w.grant_of(waiting.grant_id).state is GrantState.AWAITING_APPROVAL
    assert len(events(w, "grant.approved")) == 1


def test_an_approval_asks_ec2_for_the_instances_tags_once(w: World) -> None:
    tagged = replace(POLICY.rules[1], instance_tags={"team": "data"})
    w = w.with_policy(AccessPolicy(rules=(POLICY.rules[0], tagged)))
    w.aws.instance_tags[INSTANCE] = {"team": "data"}
    waiting = request(w)
    before = w.aws.entered["find_instance"]

    approve(w, waiting, "alice")

    # Decided once, at authorization, for both of the pipeline's looks at the approval.
    assert w.aws.entered["find_instance"] - before == 1
