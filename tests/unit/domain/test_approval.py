"""Access that needs approval: which rule decides, who may approve, counting approvals, the ttl
the grant gets, and the state a request moves through."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.approval import Approval, ApprovalRule, Vote
from broker.domain.authorization import AccessPolicy, AccessRequest, Decision, Rule, decide
from broker.domain.grants import GrantRequest, GrantScope, awaiting_approval
from tests.places import HOME

HOUR = timedelta(hours=1)
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
TWO_OF = ApprovalRule(("alice", "bob", "sre-*"), required=2, timeout=4 * HOUR)
SCOPE = GrantScope("prod-data", "", Access.READ)
NEEDS_APPROVAL = Rule(
    number=2,
    identities=("team-data-*",),
    buckets=("prod-*",),
    access=frozenset({Access.READ, Access.UPLOAD}),
    max_ttl=8 * HOUR,
    approval=TWO_OF,
)
AT_ONCE = Rule(
    number=1,
    identities=("team-data-*",),
    buckets=("prod-*",),
    access=frozenset({Access.READ}),
    max_ttl=HOUR,
)


def asked(ttl: timedelta | None = HOUR, access: Access = Access.READ) -> AccessRequest:
    return AccessRequest("team-data-etl", replace(SCOPE, access=access), {}, ttl)


def test_a_request_only_a_rule_with_approval_allows_is_allowed_once_approved() -> None:
    policy = AccessPolicy(rules=(NEEDS_APPROVAL,))

    decision = decide(policy, asked(4 * HOUR))

    assert decision == Decision(
        True,
        "allowed by rule 2 once approved by 2 of alice, bob, sre-*",
        2,
        4 * HOUR,
        TWO_OF,
    )


def test_the_first_rule_that_admits_the_request_decides_whether_it_needs_approval() -> None:
    at_once_first = decide(AccessPolicy(rules=(AT_ONCE, NEEDS_APPROVAL)), asked(HOUR))
    guarded_first = decide(
        AccessPolicy(rules=(replace(NEEDS_APPROVAL, number=1), replace(AT_ONCE, number=2))),
        asked(HOUR),
    )

    assert (at_once_first.rule, at_once_first.approval) == (1, None)
    # An approval rule placed before a broader one guards what it names.
    assert (guarded_first.rule, guarded_first.approval) == (1, TWO_OF)


def test_what_only_the_approval_rule_allows_needs_approval() -> None:
    policy = AccessPolicy(rules=(AT_ONCE, NEEDS_APPROVAL))

    longer = decide(policy, asked(2 * HOUR))
    upload = decide(policy, asked(HOUR, Access.UPLOAD))

    assert (longer.rule, longer.approval) == (2, TWO_OF)
    assert (upload.rule, upload.approval) == (2, TWO_OF)


def test_admins_need_no_approval() -> None:
    policy = AccessPolicy(admins=frozenset({"root-admin"}), rules=(NEEDS_APPROVAL,))

    decision = decide(policy, replace(asked(), identity="root-admin"))

    assert decision.allowed and decision.approval is None


def test_over_every_rules_max_is_refused_whatever_the_approval() -> None:
    decision = decide(AccessPolicy(rules=(AT_ONCE, NEEDS_APPROVAL)), asked(9 * HOUR))

    assert not decision.allowed
    assert decision.reason == "ttl 9h is over the rule's max of 8h (rule 2)"


APPROVAL = Approval.asked_by(TWO_OF, 4 * HOUR)


@pytest.mark.parametrize(
    ("identity", "why_not"),
    [
        ("alice", None),
        ("sre-oncall", None),
        ("mallory", "mallory is not an approver of this request (alice, bob, sre-*)"),
        ("team-data-etl", "the requester never approves or denies their own request"),
    ],
)
def test_who_may_decide(identity: str, why_not: str | None) -> None:
    assert APPROVAL.may_decide(identity, requested_by="team-data-etl") == why_not


def test_the_requester_never_decides_even_when_named_an_approver() -> None:
    approval = Approval.asked_by(ApprovalRule(("alice", "bob")), HOUR)

    assert approval.may_decide("alice", requested_by="alice") is not None


def test_an_approver_may_shorten_the_ttl_never_lengthen_it() -> None:
    assert APPROVAL.ttl_problem(2 * HOUR) is None
    assert APPROVAL.ttl_problem(4 * HOUR) is None
    assert APPROVAL.ttl_problem(5 * HOUR) == "may only shorten the requested 4h, not lengthen it"


def request() -> GrantRequest:
    return GrantRequest(
        "i-0123456789abcdef0", SCOPE, 4 * HOUR, "quarterly report", "team-data-etl", HOME
    )


def test_a_request_waits_with_nothing_live_and_lapses_at_its_timeout() -> None:
    grant = awaiting_approval("g-1", request(), TWO_OF, T0, timeout=24 * HOUR)

    assert grant.state is GrantState.AWAITING_APPROVAL
    assert not grant.is_live(T0)
    assert grant.expires_at == T0 + 4 * HOUR  # the rule's own timeout, not the server's
    assert grant.approval == Approval(TWO_OF.approvers, 2, 4 * HOUR)


def test_the_last_approval_makes_it_pending_with_its_ttl_from_then_shortest_asked() -> None:
    grant = awaiting_approval("g-1", request(), TWO_OF, T0, timeout=24 * HOUR)

    first = grant.approved_by(Vote("alice", T0 + HOUR, "ok", ttl=2 * HOUR), grant.the_approval())
    second = first.approved_by(Vote("bob", T0 + 2 * HOUR, "fine"), first.the_approval())
    active = second.activated(T0 + 3 * HOUR)

    assert first.state is GrantState.AWAITING_APPROVAL and first.expires_at == grant.expires_at
    assert (second.state, second.expires_at) == (GrantState.PENDING, None)
    assert [vote.approver for vote in second.the_approval().votes] == ["alice", "bob"]
    assert second.state_since == T0 + 2 * HOUR
    assert active.expires_at == T0 + 5 * HOUR  # alice's 2h, counted from activation


def test_only_the_approvers_the_policy_names_now_count() -> None:
    grant = awaiting_approval("g-1", request(), TWO_OF, T0, timeout=24 * HOUR)
    voted = grant.approved_by(Vote("alice", T0), grant.the_approval())

    reloaded = voted.the_approval().under(ApprovalRule(("carol", "dave"), required=2))
    by_carol = voted.approved_by(Vote("carol", T0), reloaded)

    assert by_carol.state is GrantState.AWAITING_APPROVAL  # alice's approval no longer counts
    assert reloaded.may_decide("bob", "team-data-etl") is not None


@pytest.mark.parametrize(
    ("approvers", "required", "reachable"),
    [(("alice", "bob"), 2, False), (("alice", "bob", "carol"), 2, True), (("sre-*",), 5, True)],
)
def test_a_request_its_requester_would_have_to_approve_is_unreachable(
    approvers: tuple[str, ...], required: int, reachable: bool
) -> None:
    approval = Approval.asked_by(ApprovalRule(approvers, required), HOUR)

    assert approval.reachable_by("alice") is reachable
