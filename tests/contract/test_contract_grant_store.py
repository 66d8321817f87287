"""The GrantStore port: round trips, state queries and pagination."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.approval import Approval, Vote
from broker.domain.errors import GrantNotFound
from broker.domain.grants import Grant, GrantScope, InstanceResources
from broker.domain.places import HOME_ACCOUNT, InstanceRef, Place, PlaceFilter
from broker.service.ports import GrantFilter, StateCount, UnitOfWorkFactory
from tests.places import HOME, at_home
from tests.records import INSTANCE_A, INSTANCE_B, MOMENT, GrantMaker, add_all

INSTANCE_C = "i-0aaaaaaaaaaaaaaaa"
# Where else instances live: another region of the broker's own account, another account.
OTHER_REGION = "eu-west-1"
SPOKE = Place("222222222222", HOME.region)
SCOPE = GrantScope(bucket="reports", prefix="daily/", access=Access.UPLOAD)
RESOURCES = InstanceResources(
    role_name="accessbroker-i-0123456789abcdef0",
    role_arn="arn:aws:iam::123456789012:role/accessbroker/accessbroker-i-0123456789abcdef0",
    profile_name="accessbroker-i-0123456789abcdef0",
    profile_arn=(
        "arn:aws:iam::123456789012:instance-profile/accessbroker/accessbroker-i-0123456789abcdef0"
    ),
    association_id="iip-assoc-0123456789abcdef0",
)


def stored(units: UnitOfWorkFactory, grant_id: str) -> Grant | None:
    with units() as uow:
        return uow.grants.get(grant_id)


def assert_utc(*moments: datetime | None) -> None:
    for moment in moments:
        assert moment is not None
        assert moment.tzinfo == UTC


def test_grant_round_trips_every_field(units: UnitOfWorkFactory, make_grant: GrantMaker) -> None:
    grant = make_grant(
        scope=GrantScope(bucket="reports", prefix="ünïcode/ key/" * 60, access=Access.READ_WRITE),
        failure_reason="",
        resources=RESOURCES,
    )
    add_all(units, [grant])

    read = stored(units, grant.grant_id)

    assert read == grant
    assert read is not None
    assert_utc(read.created_at, read.updated_at, read.expires_at)


def test_grant_without_expiry_round_trips(units: UnitOfWorkFactory, make_grant: GrantMaker) -> None:
    grant = make_grant(expires_at=None)
    add_all(units, [grant])

    assert stored(units, grant.grant_id) == grant


def test_unknown_grant_reads_as_none(units: UnitOfWorkFactory) -> None:
    assert stored(units, "00000000-0000-4000-8000-999999999999") is None


def test_save_overwrites_the_stored_grant(units: UnitOfWorkFactory, make_grant: GrantMaker) -> None:
    grant = make_grant()
    add_all(units, [grant])
    later = grant.updated_at.replace(hour=20)
    failed = grant.with_resources(RESOURCES, later).moved_to(
        GrantState.FAILED, later, failure_reason="PolicyTooLarge: 6200 > 6144 bytes"
    )

    with units() as uow:
        uow.grants.save(failed)
        uow.commit()

    read = stored(units, grant.grant_id)
    assert read == failed
    assert read is not None
    assert_utc(read.updated_at)


def test_save_of_an_unknown_grant_raises(units: UnitOfWorkFactory, make_grant: GrantMaker) -> None:
    with units() as uow, pytest.raises(GrantNotFound):
        uow.grants.save(make_grant())


def grants_in_every_state(make_grant: GrantMaker, instance_id: str) -> list[Grant]:
    return [make_grant(instance_id=instance_id, scope=SCOPE, state=state) for state in GrantState]


def test_for_instance_returns_pending_active_and_revoking_grants(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    add_all(
        units, [*grants_in_every_state(make_grant, INSTANCE_A), make_grant(instance_id=INSTANCE_B)]
    )

    with units() as uow:
        live = uow.grants.for_instance(at_home(INSTANCE_A))

    assert [grant.state for grant in live] == [
        GrantState.PENDING,
        GrantState.ACTIVE,
        GrantState.REVOKING,
    ]
    assert {grant.instance for grant in live} == {at_home(INSTANCE_A)}


def test_expired_are_the_pending_or_active_grants_at_or_past_their_expiry(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    now = MOMENT + timedelta(hours=2)
    past, at_now = now - timedelta(minutes=1), now
    expired = [
        make_grant(state=GrantState.ACTIVE, expires_at=past),
        make_grant(state=GrantState.PENDING, expires_at=at_now),
        make_grant(instance_id=INSTANCE_B, state=GrantState.ACTIVE, expires_at=past),
    ]
    kept = [
        make_grant(state=GrantState.ACTIVE, expires_at=now + timedelta(seconds=1)),
        make_grant(state=GrantState.ACTIVE, expires_at=None),
        *(make_grant(state=s, expires_at=past) for s in GrantState if not s.is_desired),
    ]
    add_all(units, [kept[0], expired[0], *kept[1:], *expired[1:]])

    with units() as uow:
        found = uow.grants.expired(now)

    assert found == expired


def test_settling_instances_are_those_with_pending_or_revoking_grants(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    add_all(
        units,
        [
            make_grant(instance_id=INSTANCE_C, state=GrantState.REVOKING),
            make_grant(instance_id=INSTANCE_A, state=GrantState.PENDING),
            make_grant(instance_id=INSTANCE_A, state=GrantState.REVOKING),
            make_grant(instance_id=INSTANCE_B, state=GrantState.ACTIVE),
            make_grant(instance_id=INSTANCE_B, state=GrantState.FAILED),
            make_grant(instance_id=INSTANCE_B, state=GrantState.REVOKED),
            make_grant(instance_id=INSTANCE_B, state=GrantState.EXPIRED),
        ],
    )

    with units() as uow:
        assert uow.grants.settling_instances() == [at_home(INSTANCE_A), at_home(INSTANCE_C)]


def test_live_instances_are_those_with_pending_active_or_revoking_grants(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    settled = "i-0bbbbbbbbbbbbbbbb"
    add_all(
        units,
        [
            make_grant(instance_id=INSTANCE_C, state=GrantState.ACTIVE),
            make_grant(instance_id=INSTANCE_A, state=GrantState.REVOKING),
            make_grant(instance_id=INSTANCE_A, state=GrantState.PENDING),
            make_grant(instance_id=INSTANCE_B, state=GrantState.PENDING),
            make_grant(instance_id=settled, state=GrantState.FAILED),
            make_grant(instance_id=settled, state=GrantState.REVOKED),
            make_grant(instance_id=settled, state=GrantState.EXPIRED),
        ],
    )

    with units() as uow:
        assert uow.grants.live_instances() == [
            at_home(INSTANCE_A),
            at_home(INSTANCE_C),
            at_home(INSTANCE_B),
        ]


def test_an_instance_id_names_an_instance_only_where_it_lives(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    # The same instance id at home, in the home account's other region and in another account.
    places = (HOME, Place(HOME_ACCOUNT, OTHER_REGION), SPOKE)
    grants = [make_grant(place=place) for place in places]
    add_all(units, grants)

    with units() as uow:
        found = {place: uow.grants.for_instance(InstanceRef(place, INSTANCE_A)) for place in places}
        settling, live = uow.grants.settling_instances(), uow.grants.live_instances()

    assert found == {grant.place: [grant] for grant in grants}
    instances = [
        InstanceRef(Place(HOME_ACCOUNT, OTHER_REGION), INSTANCE_A),
        at_home(INSTANCE_A),
        InstanceRef(SPOKE, INSTANCE_A),
    ]
    assert (settling, live) == (instances, instances)


def all_pages(units: UnitOfWorkFactory, where: GrantFilter, limit: int) -> list[list[Grant]]:
    """Every page of the listing, following cursors until there is none."""
    pages: list[list[Grant]] = []
    cursor: int | None = None
    with units() as uow:
        while True:
            page = uow.grants.list(where, after=cursor, limit=limit)
            pages.append(page.items)
            if page.next_cursor is None:
                return pages
            assert len(pages) <= 100, "the cursor does not advance"
            cursor = page.next_cursor


def test_list_pages_through_all_grants_in_insertion_order(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    grants = [make_grant() for _ in range(5)]
    add_all(units, grants)

    pages = all_pages(units, GrantFilter(), limit=2)

    assert pages == [grants[0:2], grants[2:4], grants[4:5]]


def test_list_ends_without_cursor_when_the_last_page_is_full(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    grants = [make_grant() for _ in range(4)]
    add_all(units, grants)

    assert all_pages(units, GrantFilter(), limit=2) == [grants[0:2], grants[2:4]]


def test_list_of_an_empty_store_is_one_empty_page(units: UnitOfWorkFactory) -> None:
    assert all_pages(units, GrantFilter(), limit=3) == [[]]


def test_list_rejects_an_empty_page_size(units: UnitOfWorkFactory) -> None:
    with units() as uow, pytest.raises(ValueError, match="at least one"):
        uow.grants.list(GrantFilter(), after=None, limit=0)


@pytest.mark.parametrize(
    "where",
    [
        GrantFilter(instance_id=INSTANCE_B),
        GrantFilter(bucket="archive"),
        GrantFilter(state=GrantState.ACTIVE),
        GrantFilter(instance_id=INSTANCE_B, bucket="archive", state=GrantState.ACTIVE),
    ],
    ids=["instance", "bucket", "state", "all-three"],
)
def test_list_filters_across_pages(
    units: UnitOfWorkFactory, make_grant: GrantMaker, where: GrantFilter
) -> None:
    grants = [
        make_grant(
            instance_id=(INSTANCE_A, INSTANCE_B)[number % 2],
            scope=replace(SCOPE, bucket=("reports", "archive")[number // 2 % 2]),
            state=(GrantState.PENDING, GrantState.ACTIVE, GrantState.REVOKED)[number % 3],
        )
        for number in range(48)
    ]
    add_all(units, grants)
    expected = [grant for grant in grants if matches(grant, where)]

    pages = all_pages(units, where, limit=2)

    assert [grant for page in pages for grant in page] == expected
    assert len(pages) > 1


def matches(grant: Grant, where: GrantFilter) -> bool:
    return (
        where.instance_id in ("", grant.instance_id)
        and where.bucket in ("", grant.scope.bucket)
        and where.state in (None, grant.state)
    )


@pytest.mark.parametrize(
    "places",
    [
        PlaceFilter(account=SPOKE.account),
        PlaceFilter(region=OTHER_REGION),
        PlaceFilter(HOME_ACCOUNT, HOME.region),
    ],
    ids=["account", "region", "both"],
)
def test_list_narrowed_to_places_across_pages(
    units: UnitOfWorkFactory, make_grant: GrantMaker, places: PlaceFilter
) -> None:
    everywhere = (
        HOME,
        Place(HOME_ACCOUNT, OTHER_REGION),
        SPOKE,
        Place(SPOKE.account, OTHER_REGION),
    )
    grants = [make_grant(place=everywhere[number % 4]) for number in range(24)]
    add_all(units, grants)

    pages = all_pages(units, GrantFilter(places=places), limit=2)

    assert [g for page in pages for g in page] == [g for g in grants if places.holds(g.place)]
    assert len(pages) > 1


def test_a_requesters_grants_are_listed_across_pages_and_no_others(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    callers = ("svc-ci", "svc-web", "spiffe://example.org/ns/ci/sa/builder")
    grants = [make_grant(requested_by=callers[number % 3]) for number in range(20)]
    add_all(units, grants)

    pages = all_pages(units, GrantFilter(requested_by="svc-web"), limit=2)
    nobodys = all_pages(units, GrantFilter(requested_by="svc-other"), limit=2)

    assert [g for page in pages for g in page] == [g for g in grants if g.requested_by == "svc-web"]
    assert len(pages) > 1
    assert nobodys == [[]]


def test_grants_are_counted_by_state_with_the_oldest_arrival(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    with units() as uow:
        assert uow.grants.count_by_state() == {}
    early, late = MOMENT - timedelta(hours=3), MOMENT - timedelta(minutes=5)
    active = [make_grant(state=GrantState.ACTIVE, state_since=t) for t in (late, early)]
    add_all(units, [make_grant(), *active, make_grant(state=GrantState.REVOKED)])

    with units() as uow:
        counts = uow.grants.count_by_state()

    assert counts == {
        GrantState.PENDING: StateCount(1, MOMENT),
        GrantState.ACTIVE: StateCount(2, early),
        GrantState.REVOKED: StateCount(1, MOMENT),
    }


def test_a_grant_is_in_its_state_since_it_moved_there(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    pending = make_grant()
    add_all(units, [pending])
    revoking = pending.moved_to(GrantState.REVOKING, MOMENT + timedelta(minutes=1))
    with units() as uow:
        uow.grants.save(revoking)
        uow.commit()

    with units(read_only=True) as uow:
        stored = uow.grants.get(pending.grant_id)

    assert stored is not None and stored.state_since == MOMENT + timedelta(minutes=1)
    assert stored.created_at == MOMENT


def test_a_grants_approval_is_stored_whole(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    approval = Approval(("alice", "sre-*"), 2, timedelta(hours=4))
    voted = approval.with_vote(Vote("alice", MOMENT, "ok", timedelta(hours=1)))
    waiting = make_grant(state=GrantState.AWAITING_APPROVAL, approval=voted)
    plain = make_grant()
    add_all(units, [waiting, plain])

    with units(read_only=True) as uow:
        stored, other = uow.grants.get(waiting.grant_id), uow.grants.get(plain.grant_id)

    assert stored is not None and stored.approval == voted
    assert other is not None and other.approval is None


def test_requests_left_unanswered_past_their_time_are_found(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    approval = Approval(("alice",), 1, None)
    lapsed = make_grant(state=GrantState.AWAITING_APPROVAL, approval=approval, expires_at=MOMENT)
    later = make_grant(
        state=GrantState.AWAITING_APPROVAL,
        approval=approval,
        expires_at=MOMENT + timedelta(seconds=1),
    )
    active = make_grant(state=GrantState.ACTIVE, expires_at=MOMENT)
    add_all(units, [lapsed, later, active])

    with units(read_only=True) as uow:
        found = uow.grants.lapsed_requests(MOMENT)

    assert [g.grant_id for g in found] == [lapsed.grant_id]
