"""Acting on behalf of a person: only a delegate the policy lists may; the command is then the
person's (authorized and owned as theirs), and every event it writes names the delegate."""

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.audit import Outcome
from broker.domain.authorization import AccessPolicy, Rule
from broker.domain.errors import PermissionDenied
from broker.service.commands import GetGrant, ListGrants
from tests.unit.service.fakes import INSTANCE, World, grant_command, world

WEB = "accessbroker-web"
POLICY = AccessPolicy(
    delegates=frozenset({WEB}),
    rules=(Rule(1, ("alice",), ("photos",), frozenset(Access)),),
)


@pytest.fixture
def w() -> World:
    return world(INSTANCE).with_policy(POLICY)


def test_a_delegate_acts_as_the_person_and_every_event_names_it(w: World) -> None:
    granted = w.handle(grant_command("photos", actor="alice", via=WEB)).grant

    assert granted.state is GrantState.ACTIVE and granted.requested_by == "alice"
    events = w.db.snapshot().audit
    assert events and all(e.detail.get("via") == WEB for e in events)
    assert {e.actor for e in events if e.action.startswith("grant.")} == {"alice"}


def test_the_person_is_authorized_not_the_delegate(w: World) -> None:
    with pytest.raises(PermissionDenied, match="no rule is for identity bob"):
        w.handle(grant_command("photos", actor="bob", via=WEB))


def test_a_caller_that_is_no_delegate_is_refused_and_audited(w: World) -> None:
    with pytest.raises(PermissionDenied, match="intruder may not act on behalf of others"):
        w.handle(grant_command("photos", actor="alice", via="intruder"))

    [refusal] = w.db.snapshot().audit
    assert (refusal.action, refusal.outcome, refusal.actor) == (
        "grant.rejected",
        Outcome.DENIED,
        "alice",
    )
    assert refusal.detail["via"] == "intruder"
    assert w.db.grants() == []


def test_reads_too_are_the_persons(w: World) -> None:
    granted = w.handle(grant_command("photos", actor="alice")).grant

    read = w.handle(GetGrant(grant_id=granted.grant_id, actor="alice", via=WEB))
    with pytest.raises(PermissionDenied):
        w.handle(ListGrants(actor="alice", via="intruder"))

    assert read.grant_id == granted.grant_id
