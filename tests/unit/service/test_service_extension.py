"""Extension: an identical grant extends the live one, a broader one covers, ExtendGrant."""

from datetime import timedelta

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.errors import GrantNotFound, InvalidRequest, WrongState
from broker.domain.grants import GrantLimits
from broker.service.commands import ExtendGrant, RevokeAccess
from tests.unit.service.fakes import START, World, grant_command

HOUR = timedelta(hours=1)
MISSING = "00000000-0000-0000-0000-00000000beef"


def extended_events(w: World) -> list[dict[str, object]]:
    return [e.detail for e in w.db.snapshot().audit if e.action == "grant.extended"]


# --- an identical grant ---------------------------------------------------------------------


def test_an_identical_grant_moves_the_expiry_later_audited(w: World) -> None:
    first = w.handle(grant_command(ttl=HOUR)).grant
    calls = list(w.aws.calls)
    w.clock.advance(HOUR / 2)

    again = w.handle(grant_command(ttl=HOUR, actor="carol")).grant

    assert again.grant_id == first.grant_id
    assert again.expires_at == START + HOUR + HOUR / 2
    assert len(w.db.grants()) == 1
    assert w.aws.calls == calls  # the policy does not change
    [detail] = extended_events(w)
    assert detail["old_expires_at"] == (START + HOUR).isoformat()
    assert detail["new_expires_at"] == (START + HOUR + HOUR / 2).isoformat()


def test_an_identical_grant_asking_for_less_time_never_shortens(w: World) -> None:
    first = w.handle(grant_command(ttl=2 * HOUR)).grant

    again = w.handle(grant_command(ttl=HOUR)).grant

    assert again.expires_at == first.expires_at == START + 2 * HOUR
    assert extended_events(w) == []


def test_a_grant_without_expiry_stays_without(w: World) -> None:
    w.handle(grant_command())

    assert w.handle(grant_command(ttl=HOUR)).grant.expires_at is None
    assert extended_events(w) == []


def test_a_keyed_retry_does_not_extend_again(w: World) -> None:
    w.handle(grant_command(ttl=HOUR))
    w.clock.advance(HOUR / 2)
    extended = w.handle(grant_command(ttl=HOUR, idempotency_key="k")).grant
    w.clock.advance(HOUR / 4)

    retried = w.handle(grant_command(ttl=HOUR, idempotency_key="k")).grant

    assert retried.expires_at == extended.expires_at
    assert len(extended_events(w)) == 1


def test_an_identical_grant_after_expiry_is_a_new_grant(w: World) -> None:
    first = w.handle(grant_command(ttl=HOUR)).grant
    w.clock.advance(HOUR)

    second = w.handle(grant_command(ttl=HOUR)).grant

    assert second.grant_id != first.grant_id
    assert second.state is GrantState.ACTIVE
    assert w.grant_of(first.grant_id).state is GrantState.EXPIRED


# --- a broader grant covers -----------------------------------------------------------------


def test_a_request_a_broader_live_grant_covers_returns_that_grant(w: World) -> None:
    broad = w.handle(grant_command("photos", Access.READ_WRITE, prefix="a/")).grant
    calls, audit = list(w.aws.calls), w.db.audit_actions()

    result = w.handle(grant_command("photos", Access.READ, prefix="a/b/", ttl=HOUR))

    assert result.covered_by == broad.grant_id
    assert result.grant == w.grant_of(broad.grant_id)
    assert len(w.db.grants()) == 1
    assert w.aws.calls == calls
    assert w.db.audit_actions() == audit


def test_a_covered_dry_run_says_so_and_writes_nothing(w: World) -> None:
    broad = w.handle(grant_command("photos", Access.READ)).grant
    before = w.db.snapshot()

    result = w.handle(grant_command("photos", Access.LIST, dry_run=True))

    assert (result.covered_by, result.planned_changes) == (broad.grant_id, ())
    assert w.db.snapshot() == before


def test_a_broader_grant_that_ends_sooner_does_not_cover(w: World) -> None:
    broad = w.handle(grant_command("photos", Access.READ_WRITE, ttl=HOUR)).grant

    result = w.handle(grant_command("photos", Access.READ, ttl=2 * HOUR))

    assert result.covered_by == ""
    assert result.grant.grant_id != broad.grant_id
    assert w.grant_of(broad.grant_id).expires_at == START + HOUR  # not extended
    assert len(w.db.grants()) == 2


def test_an_unrelated_or_narrower_grant_does_not_cover(w: World) -> None:
    w.handle(grant_command("photos", Access.READ, prefix="a/b/"))
    w.handle(grant_command("photos", Access.UPLOAD, prefix="a/"))

    result = w.handle(grant_command("photos", Access.READ, prefix="a/"))

    assert result.covered_by == ""
    assert len(w.db.grants()) == 3


# --- ExtendGrant ----------------------------------------------------------------------------


def test_extend_sets_the_expiry_to_now_plus_ttl_audited_with_the_reason(w: World) -> None:
    grant = w.handle(grant_command(ttl=HOUR)).grant
    w.clock.advance(HOUR / 2)

    extended = w.handle(
        ExtendGrant(grant_id=grant.grant_id, ttl=3 * HOUR, reason="longer job", actor="dan")
    )

    assert extended.expires_at == START + HOUR / 2 + 3 * HOUR
    assert w.grant_of(grant.grant_id) == extended
    [event] = [e for e in w.db.snapshot().audit if e.action == "grant.extended"]
    assert (event.actor, event.detail["reason"]) == ("dan", "longer job")


def test_extend_never_shortens_and_a_repeat_moves_it_only_by_the_time_passed(w: World) -> None:
    grant = w.handle(grant_command(ttl=4 * HOUR)).grant

    assert w.handle(ExtendGrant(grant_id=grant.grant_id, ttl=HOUR)).expires_at == grant.expires_at
    assert extended_events(w) == []

    w.clock.advance(3 * HOUR + timedelta(seconds=1))
    first = w.handle(ExtendGrant(grant_id=grant.grant_id, ttl=HOUR)).expires_at
    w.clock.advance(timedelta(seconds=2))  # a retry, a little later
    retried = w.handle(ExtendGrant(grant_id=grant.grant_id, ttl=HOUR)).expires_at
    assert first is not None
    assert retried == first + timedelta(seconds=2) == w.clock.now() + HOUR


def test_extend_keeps_a_grant_without_expiry_without(w: World) -> None:
    grant = w.handle(grant_command()).grant

    assert w.handle(ExtendGrant(grant_id=grant.grant_id, ttl=HOUR)).expires_at is None
    assert extended_events(w) == []


def test_extend_is_refused_beyond_the_maximum_naming_it(w: World) -> None:
    grant = w.handle(grant_command(ttl=HOUR)).grant
    deps = w.with_options(limits=GrantLimits(max_ttl=8 * HOUR))

    with pytest.raises(InvalidRequest, match="at most 8h, the server's maximum"):
        deps.handle(ExtendGrant(grant_id=grant.grant_id, ttl=9 * HOUR))
    assert deps.handle(ExtendGrant(grant_id=grant.grant_id, ttl=8 * HOUR)).expires_at == (
        START + 8 * HOUR
    )


def test_extend_names_every_bad_field(w: World) -> None:
    with pytest.raises(InvalidRequest) as missing:
        w.handle(ExtendGrant(grant_id="not-a-grant", ttl=None, reason="\x00"))
    assert {v.field for v in missing.value.violations} == {"grant_id", "ttl", "reason"}

    with pytest.raises(InvalidRequest) as zero:
        w.handle(ExtendGrant(grant_id=MISSING, ttl=timedelta(0)))
    assert {v.field for v in zero.value.violations} == {"ttl"}


def test_extend_of_an_unknown_grant_is_not_found(w: World) -> None:
    with pytest.raises(GrantNotFound):
        w.handle(ExtendGrant(grant_id=MISSING, ttl=HOUR))


def test_extend_of_a_grant_that_is_not_live_is_refused(w: World) -> None:
    revoked = w.handle(grant_command("photos", ttl=HOUR)).grant
    w.handle(RevokeAccess(grant_id=revoked.grant_id))
    lapsed = w.handle(grant_command("logs", ttl=HOUR)).grant
    w.clock.advance(HOUR)  # past its expiry, though the sweep has not run yet

    with pytest.raises(WrongState, match="is revoked"):
        w.handle(ExtendGrant(grant_id=revoked.grant_id, ttl=HOUR))
    with pytest.raises(WrongState, match="is expired"):
        w.handle(ExtendGrant(grant_id=lapsed.grant_id, ttl=HOUR))
    assert extended_events(w) == []
