"""The audit log, idempotency keys and instance records on a real database."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from broker.domain.audit import AuditEvent, NewAuditEvent, Outcome
from broker.domain.errors import IdempotencyConflict
from broker.domain.grants import InstanceResources
from broker.service.ports import (
    AuditFilter,
    IdempotencyRecord,
    InstanceRecord,
    UnitOfWorkFactory,
)

INSTANCE_A = "i-0123456789abcdef0"
INSTANCE_B = "i-0fedcba9876543210"
GRANT_1 = "00000000-0000-4000-8000-000000000001"
GRANT_2 = "00000000-0000-4000-8000-000000000002"
# Not UTC, so tests show the store hands back UTC whatever offset it was given.
MOMENT = datetime(2026, 7, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))


def append_all(units: UnitOfWorkFactory, events: list[NewAuditEvent]) -> None:
    with units() as uow:
        for event in events:
            uow.audit.append(event)
        uow.commit()


def audit_event(
    number: int, instance_id: str = INSTANCE_A, grant_id: str = GRANT_1
) -> NewAuditEvent:
    return NewAuditEvent(
        time=MOMENT + timedelta(seconds=number),
        actor="alice@example.com",
        action=f"step-{number}",
        outcome=Outcome.SUCCESS,
        instance_id=instance_id,
        grant_id=grant_id,
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


def idempotency_record(operation: str = "GrantAccess", key: str = "req-1") -> IdempotencyRecord:
    return IdempotencyRecord(
        key=key, operation=operation, fingerprint="f" * 64, grant_id=GRANT_1, created_at=MOMENT
    )


def test_idempotency_record_round_trips(units: UnitOfWorkFactory) -> None:
    record = idempotency_record()
    with units() as uow:
        uow.idempotency.add(record)
        uow.commit()

    with units() as uow:
        read = uow.idempotency.get("GrantAccess", "req-1")
        unknown = uow.idempotency.get("RevokeAccess", "req-1")

    assert read == record
    assert read is not None
    assert read.created_at.tzinfo == UTC
    assert unknown is None


def test_idempotency_key_is_per_operation(units: UnitOfWorkFactory) -> None:
    with units() as uow:
        uow.idempotency.add(idempotency_record("GrantAccess"))
        uow.idempotency.add(idempotency_record("RevokeAccess"))
        uow.commit()

    with units() as uow:
        assert uow.idempotency.get("RevokeAccess", "req-1") == idempotency_record("RevokeAccess")


def test_adding_a_used_key_again_raises_at_add(units: UnitOfWorkFactory) -> None:
    with units() as uow:
        uow.idempotency.add(idempotency_record())
        uow.commit()

    with units() as uow, pytest.raises(IdempotencyConflict, match="req-1"):
        uow.idempotency.add(replace_fingerprint(idempotency_record(), "0" * 64))

    with units() as uow:
        assert uow.idempotency.get("GrantAccess", "req-1") == idempotency_record()


def replace_fingerprint(record: IdempotencyRecord, fingerprint: str) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=record.key,
        operation=record.operation,
        fingerprint=fingerprint,
        grant_id=record.grant_id,
        created_at=record.created_at,
    )


def instance_record(policy_document: str, association_id: str) -> InstanceRecord:
    return InstanceRecord(
        instance_id=INSTANCE_A,
        resources=InstanceResources(
            role_name="accessbroker-i-0123456789abcdef0",
            role_arn="arn:aws:iam::123456789012:role/accessbroker/accessbroker-i-0123456789abcdef0",
            profile_name="accessbroker-i-0123456789abcdef0",
            profile_arn="arn:aws:iam::123456789012:instance-profile/accessbroker/x",
            association_id=association_id,
        ),
        policy_document=policy_document,
        updated_at=MOMENT,
    )


def test_instance_record_is_inserted_then_overwritten(units: UnitOfWorkFactory) -> None:
    first = instance_record('{"Version": "2012-10-17", "Statement": []}', "iip-assoc-1")
    second = instance_record("", "iip-assoc-2")
    with units() as uow:
        assert uow.instances.get(INSTANCE_A) is None
        uow.instances.save(first)
        uow.commit()
    with units() as uow:
        assert uow.instances.get(INSTANCE_A) == first
        uow.instances.save(second)
        uow.commit()

    with units() as uow:
        read = uow.instances.get(INSTANCE_A)

    assert read == second
    assert read is not None
    assert read.updated_at.tzinfo == UTC
