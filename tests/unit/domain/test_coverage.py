"""Coverage: when a live grant already gives everything a request asks for, and for how long."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.access import Access, GrantState
from broker.domain.coverage import covering_grant, covers
from broker.domain.grants import Grant, GrantScope
from broker.domain.policy import build_policy
from tests.places import HOME

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
A = Access


def scope(access: Access, prefix: str = "", bucket: str = "photos") -> GrantScope:
    return GrantScope(bucket=bucket, prefix=prefix, access=access)


@pytest.mark.parametrize(
    ("broader", "narrower"),
    [
        (A.READ_WRITE, A.READ),
        (A.READ_WRITE, A.UPLOAD),
        (A.READ_WRITE, A.LIST),
        (A.READ, A.LIST),
    ],
)
def test_a_level_covers_the_levels_it_includes(broader: Access, narrower: Access) -> None:
    assert covers(scope(broader), scope(narrower))
    assert not covers(scope(narrower), scope(broader))


@pytest.mark.parametrize(("one", "other"), [(A.UPLOAD, A.READ), (A.UPLOAD, A.LIST)])
def test_unrelated_levels_cover_neither_way(one: Access, other: Access) -> None:
    assert not covers(scope(one), scope(other))
    assert not covers(scope(other), scope(one))


def test_a_prefix_covers_longer_prefixes_in_the_same_bucket_only() -> None:
    assert covers(scope(A.READ, "logs/"), scope(A.READ, "logs/2025/"))
    assert covers(scope(A.READ, ""), scope(A.READ, "anything/"))
    assert not covers(scope(A.READ, "logs/2025/"), scope(A.READ, "logs/"))
    assert not covers(scope(A.READ, "logs/"), scope(A.READ, "other/"))
    assert not covers(scope(A.READ, ""), scope(A.READ, "", bucket="elsewhere"))


def _actions(document_scope: GrantScope) -> set[tuple[str, str, str]]:
    """(action, resource, condition) triples the policy of one scope allows."""
    document = build_policy([document_scope])
    assert document is not None
    triples = set()
    for statement in document["Statement"]:
        condition = str(statement.get("Condition", ""))
        for action in statement["Action"]:
            for resource in statement["Resource"]:
                triples.add((action, resource, condition))
    return triples


PREFIXES = st.sampled_from(["", "a/", "a/b/", "b/"])


@given(st.sampled_from(list(Access)), st.sampled_from(list(Access)), PREFIXES)
def test_covering_at_the_same_prefix_means_the_policy_holds_every_action(
    broader: Access, narrower: Access, prefix: str
) -> None:
    """The rule agrees with the policy shapes: what covers holds each action the other has."""
    wide, narrow = scope(broader, prefix), scope(narrower, prefix)
    wide_actions = {action for action, _, _ in _actions(wide)}
    narrow_actions = {action for action, _, _ in _actions(narrow)}
    assert covers(wide, narrow) == (narrow_actions <= wide_actions)


@given(PREFIXES, PREFIXES, st.sampled_from(list(Access)))
def test_covering_is_reflexive_and_prefix_ordered(wide: str, narrow: str, access: Access) -> None:
    assert covers(scope(access, wide), scope(access, wide))
    assert covers(scope(access, wide), scope(access, narrow)) == narrow.startswith(wide)


def grant(
    access: Access,
    expires_at: datetime | None,
    state: GrantState = GrantState.ACTIVE,
    grant_id: str = "g",
) -> Grant:
    return Grant(
        grant_id=grant_id,
        instance_id="i-01234567",
        place=HOME,
        scope=scope(access),
        state=state,
        created_at=NOW,
        updated_at=NOW,
        state_since=NOW,
        expires_at=expires_at,
        requested_by="alice",
        reason="",
    )


def test_the_covering_grant_must_last_at_least_as_long_as_asked() -> None:
    later, sooner = NOW + timedelta(hours=2), NOW + timedelta(hours=1)
    asked = scope(A.READ, "logs/")

    assert covering_grant([grant(A.READ_WRITE, later)], asked, sooner, NOW) is not None
    assert covering_grant([grant(A.READ_WRITE, None)], asked, None, NOW) is not None
    assert covering_grant([grant(A.READ_WRITE, sooner)], asked, later, NOW) is None
    assert covering_grant([grant(A.READ_WRITE, later)], asked, None, NOW) is None


def test_only_live_grants_cover() -> None:
    asked = scope(A.READ, "logs/")
    expired = grant(A.READ_WRITE, NOW)
    revoking = grant(A.READ_WRITE, None, state=GrantState.REVOKING)
    pending = grant(A.READ_WRITE, None, state=GrantState.PENDING, grant_id="p")

    assert covering_grant([expired, revoking], asked, None, NOW) is None
    assert covering_grant([expired, revoking, pending], asked, None, NOW) == pending
