"""The AuditLog port: events read back as written, in append order, filtered and paged."""

from datetime import UTC

import pytest

from broker.domain.audit import AuditEvent, NewAuditEvent, Outcome
from broker.domain.places import PlaceFilter
from broker.service.ports import AuditFilter, UnitOfWorkFactory
from tests.records import (
    GRANT_1,
    GRANT_2,
    INSTANCE_A,
    INSTANCE_B,
    MOMENT,
    append_all,
    audit_event,
)


def all_events(units: UnitOfWorkFactory, where: AuditFilter, limit: int) -> list[list[AuditEvent]]:
    pages: list[list[AuditEvent]] = []
    cursor: int | None = None
    with units() as uow:
        while True:
            page = uow.audit.list(where, after=cursor, limit=limit)
            pages.append(page.items)
            if page.next_cursor is None:
                return pages
            assert len(pages) <= 100, "the cursor does not advance"
            cursor = page.next_cursor


def test_audit_event_round_trips_with_its_detail(units: UnitOfWorkFactory) -> None:
    detail = {"policy": {"sha256": "ab" * 32, "bytes": 812}, "statements": ["Upload", "List"]}
    event = NewAuditEvent(
        time=MOMENT,
        actor="system",
        action="put-role-policy",
        outcome=Outcome.ERROR,
        instance_id=INSTANCE_A,
        grant_id=GRANT_1,
        detail=detail,
    )
    append_all(units, [event])

    with units() as uow:
        [read] = uow.audit.list(AuditFilter(), after=None, limit=10).items

    assert read == AuditEvent(
        event_id=read.event_id,
        time=MOMENT,
        actor="system",
        action="put-role-policy",
        outcome=Outcome.ERROR,
        instance_id=INSTANCE_A,
        grant_id=GRANT_1,
        detail=detail,
    )
    assert read.time.tzinfo == UTC


def test_the_detail_reads_back_as_json_holds_it(units: UnitOfWorkFactory) -> None:
    # The store keeps the detail as JSON: a tuple comes back a list, keys come back strings.
    event = NewAuditEvent(
        MOMENT, "system", "x", Outcome.SUCCESS, detail={"steps": ("a", "b"), "by_id": {1: True}}
    )
    append_all(units, [event])

    with units() as uow:
        [read] = uow.audit.list(AuditFilter(), after=None, limit=10).items

    assert read.detail == {"steps": ["a", "b"], "by_id": {"1": True}}


def test_a_detail_json_cannot_hold_is_refused_at_append(units: UnitOfWorkFactory) -> None:
    event = NewAuditEvent(MOMENT, "system", "x", Outcome.SUCCESS, detail={"when": MOMENT})

    with units() as uow, pytest.raises(TypeError, match="not JSON serializable"):
        uow.audit.append(event)


def test_audit_events_page_in_append_order(units: UnitOfWorkFactory) -> None:
    append_all(units, [audit_event(number) for number in range(5)])

    pages = all_events(units, AuditFilter(), limit=2)

    assert [[event.action for event in page] for page in pages] == [
        ["step-0", "step-1"],
        ["step-2", "step-3"],
        ["step-4"],
    ]
    ids = [event.event_id for page in pages for event in page]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


def test_events_of_later_commits_follow_with_larger_ids(units: UnitOfWorkFactory) -> None:
    append_all(units, [audit_event(1), audit_event(2)])
    append_all(units, [audit_event(3)])

    [events] = all_events(units, AuditFilter(), limit=10)

    assert [event.action for event in events] == ["step-1", "step-2", "step-3"]
    assert events[0].event_id < events[1].event_id < events[2].event_id


def test_last_event_id_is_zero_then_the_newest(units: UnitOfWorkFactory) -> None:
    with units() as uow:
        assert uow.audit.last_event_id() == 0
    append_all(units, [audit_event(1), audit_event(2)])

    with units() as uow:
        newest = uow.audit.list(AuditFilter(), None, 10).items[-1].event_id
        assert uow.audit.last_event_id() == newest


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (AuditFilter(instance_id=INSTANCE_B), [1, 3, 5, 7]),
        (AuditFilter(grant_id=GRANT_2), [2, 3, 6, 7]),
        (AuditFilter(instance_id=INSTANCE_B, grant_id=GRANT_2), [3, 7]),
        (AuditFilter(), list(range(8))),
    ],
    ids=["instance", "grant", "both", "none"],
)
def test_audit_list_filters_across_pages(
    units: UnitOfWorkFactory, where: AuditFilter, expected: list[int]
) -> None:
    append_all(
        units,
        [
            audit_event(
                number,
                instance_id=(INSTANCE_A, INSTANCE_B)[number % 2],
                grant_id=(GRANT_1, GRANT_2)[number // 2 % 2],
            )
            for number in range(8)
        ],
    )

    pages = all_events(units, where, limit=1)

    assert [event.action for page in pages for event in page] == [f"step-{n}" for n in expected]


def test_a_listing_ends_without_cursor_when_the_last_page_is_full(
    units: UnitOfWorkFactory,
) -> None:
    append_all(units, [audit_event(number) for number in range(4)])

    pages = all_events(units, AuditFilter(), limit=2)

    assert [[event.action for event in page] for page in pages] == [
        ["step-0", "step-1"],
        ["step-2", "step-3"],
    ]


def test_the_listing_of_an_empty_log_is_one_empty_page(units: UnitOfWorkFactory) -> None:
    assert all_events(units, AuditFilter(), limit=3) == [[]]


def test_list_rejects_an_empty_page_size(units: UnitOfWorkFactory) -> None:
    with units() as uow, pytest.raises(ValueError, match="at least one"):
        uow.audit.list(AuditFilter(), after=None, limit=0)


def test_the_trail_of_one_place_holds_the_events_about_instances_there(
    units: UnitOfWorkFactory,
) -> None:
    """The same instance id in two accounts is two instances; events about no instance (a
    refused request, say) are in no place."""
    home = audit_event(0, instance_id=INSTANCE_A, detail={"region": "us-east-1"})
    prod = audit_event(
        1, instance_id=INSTANCE_A, detail={"region": "us-east-1", "account": "222222222222"}
    )
    ireland = audit_event(
        2, instance_id=INSTANCE_A, detail={"region": "eu-west-1", "account": "222222222222"}
    )
    nowhere = audit_event(3, instance_id="", detail={"reason": "refused"})
    append_all(units, [home, prod, ireland, nowhere])

    def actions_in(places: PlaceFilter) -> list[str]:
        [page] = all_events(units, AuditFilter(instance_id="", places=places), limit=10)
        return [event.action for event in page]

    assert actions_in(PlaceFilter(account="")) == [home.action]
    assert actions_in(PlaceFilter(account="222222222222")) == [prod.action, ireland.action]
    assert actions_in(PlaceFilter(region="us-east-1")) == [home.action, prod.action]
    assert actions_in(PlaceFilter(account="222222222222", region="eu-west-1")) == [ireland.action]
    assert len(actions_in(PlaceFilter())) == 4
