"""The grant state machine and the making of new grants."""

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.access import Access, GrantState
from broker.domain.errors import WrongState
from broker.domain.grants import (
    Grant,
    GrantRequest,
    GrantScope,
    InstanceResources,
    new_grant,
)
from tests.places import HOME

S = GrantState
ALLOWED = {
    (S.AWAITING_APPROVAL, S.PENDING),
    (S.AWAITING_APPROVAL, S.DENIED),
    (S.AWAITING_APPROVAL, S.EXPIRED),
    (S.AWAITING_APPROVAL, S.REVOKED),
    (S.PENDING, S.ACTIVE),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.REVOKING),
    (S.PENDING, S.EXPIRED),
    (S.ACTIVE, S.REVOKING),
    (S.ACTIVE, S.EXPIRED),
    (S.ACTIVE, S.FAILED),
    (S.REVOKING, S.REVOKED),
}
ALL_PAIRS = [(a, b) for a in GrantState for b in GrantState]
T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
SCOPE = GrantScope(bucket="my-bucket", prefix="in/", access=Access.UPLOAD)


def request(ttl: timedelta | None = timedelta(hours=2)) -> GrantRequest:
    return GrantRequest(
        instance_id="i-01234567",
        place=HOME,
        scope=SCOPE,
        ttl=ttl,
        reason="export",
        requested_by="alice",
    )


def grant_in(state: GrantState, expires_at: datetime | None = None) -> Grant:
    return Grant(
        grant_id="g-1",
        instance_id="i-01234567",
        place=HOME,
        scope=SCOPE,
        state=state,
        created_at=T0,
        updated_at=T0,
        state_since=T0,
        expires_at=expires_at,
        requested_by="alice",
        reason="export",
        failure_reason="earlier trouble",
    )


@pytest.mark.parametrize(("start", "end"), sorted(ALLOWED))
def test_allowed_transitions(start: GrantState, end: GrantState) -> None:
    before = grant_in(start)
    after = before.moved_to(end, T1, failure_reason="why")
    assert after.state is end
    assert after.updated_at == T1 and after.failure_reason == "why"
    assert after.created_at == T0 and after.scope == SCOPE and after.grant_id == "g-1"
    assert before.state is start and before.updated_at == T0  # the original is untouched


@pytest.mark.parametrize(("start", "end"), [p for p in ALL_PAIRS if p not in ALLOWED])
def test_refused_transitions(start: GrantState, end: GrantState) -> None:
    with pytest.raises(WrongState) as raised:
        grant_in(start).moved_to(end, T1)
    assert "g-1" in str(raised.value) and start.value in str(raised.value)
    assert end.value in str(raised.value)


@pytest.mark.parametrize("state", [S.FAILED, S.REVOKED, S.EXPIRED])
def test_final_states_go_nowhere(state: GrantState) -> None:
    assert state.is_final
    for end in GrantState:
        with pytest.raises(WrongState):
            grant_in(state).moved_to(end, T1)


def test_moving_clears_an_old_failure_reason_by_default() -> None:
    assert grant_in(S.PENDING).moved_to(S.ACTIVE, T1).failure_reason == ""


def test_state_properties() -> None:
    assert {s for s in GrantState if s.is_desired} == {S.PENDING, S.ACTIVE}
    assert {s for s in GrantState if s.is_settling} == {S.PENDING, S.REVOKING}
    assert {s for s in GrantState if s.is_final} == {S.FAILED, S.REVOKED, S.EXPIRED, S.DENIED}


@given(st.lists(st.sampled_from(GrantState), max_size=6))
def test_any_walk_follows_the_table(wanted: list[GrantState]) -> None:
    grant = grant_in(S.PENDING)
    for end in wanted:
        if (grant.state, end) in ALLOWED:
            grant = grant.moved_to(end, T1)
        else:
            with pytest.raises(WrongState):
                grant.moved_to(end, T1)
    # Final states are reached only through the table, and nothing leaves them.
    assert grant.state.is_final == (grant.state in {S.FAILED, S.REVOKED, S.EXPIRED, S.DENIED})


def test_new_grant_is_pending_and_expires_after_its_ttl() -> None:
    grant = new_grant("g-2", request(timedelta(hours=2)), T0)
    assert grant == Grant(
        grant_id="g-2",
        instance_id="i-01234567",
        place=HOME,
        scope=SCOPE,
        state=S.PENDING,
        created_at=T0,
        updated_at=T0,
        state_since=T0,
        expires_at=T0 + timedelta(hours=2),
        requested_by="alice",
        reason="export",
    )
    assert grant.failure_reason == "" and grant.resources == InstanceResources()


def test_new_grant_without_ttl_never_expires() -> None:
    assert new_grant("g-3", request(None), T0).expires_at is None


@given(st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=36_525)))
def test_expiry_is_creation_plus_ttl(ttl: timedelta) -> None:
    grant = new_grant("g-4", request(ttl), T0)
    assert grant.expires_at is not None and grant.expires_at - grant.created_at == ttl


def test_with_resources() -> None:
    resources = InstanceResources(role_name="r", role_arn="arn:r")
    grant = grant_in(S.ACTIVE).with_resources(resources, T1)
    assert grant.resources == resources and grant.updated_at == T1 and grant.state is S.ACTIVE


def test_grants_are_immutable() -> None:
    with pytest.raises(FrozenInstanceError):
        grant_in(S.ACTIVE).state = S.REVOKED  # type: ignore[misc]


def test_scopes_order_and_compare_by_value() -> None:
    a = GrantScope("alpha", "", Access.READ)
    assert a == GrantScope("alpha", "", Access.READ) and hash(a) == hash(
        GrantScope("alpha", "", Access.READ)
    )
    assert sorted([GrantScope("b", "", Access.READ), a]) == [a, GrantScope("b", "", Access.READ)]


def test_access_values_match_the_api() -> None:
    assert [a.value for a in Access] == ["upload", "read", "read-write", "list"]
    assert Access("read-write") is Access.READ_WRITE


OPTIONAL_TIMES = st.none() | st.datetimes(timezones=st.just(UTC))


@given(current=OPTIONAL_TIMES, requested=OPTIONAL_TIMES)
def test_extending_never_shortens_and_reaches_what_was_asked(
    current: datetime | None, requested: datetime | None
) -> None:
    extended = grant_in(S.ACTIVE, expires_at=current).extended_to(requested, T1)

    if current is None:
        assert extended.expires_at is None  # a grant without expiry stays without
    elif requested is None:
        assert extended.expires_at is None  # asked for no expiry: the later of the two
    else:
        assert extended.expires_at == max(current, requested)
        assert extended.expires_at >= current
    assert extended.updated_at == T1


def test_a_grant_has_expired_from_its_expiry_on_and_is_live_only_before() -> None:
    active = grant_in(S.ACTIVE, expires_at=T1)
    assert not active.has_expired(T1 - timedelta(microseconds=1))
    assert active.is_live(T1 - timedelta(microseconds=1))
    assert active.has_expired(T1)
    assert not active.is_live(T1)
    assert not grant_in(S.REVOKING, expires_at=None).is_live(T1)
    assert grant_in(S.PENDING, expires_at=None).is_live(datetime.max.replace(tzinfo=UTC))
