"""Audit ids follow commit order, so a feed resuming after id N can never skip an earlier event."""

import threading

from broker.service.ports import AuditFilter, GrantFilter, UnitOfWorkFactory
from tests.integration.db.test_db_records import append_all, audit_event


def test_last_event_id_is_zero_then_the_newest(units: UnitOfWorkFactory) -> None:
    with units() as uow:
        assert uow.audit.last_event_id() == 0
    append_all(units, [audit_event(1), audit_event(2)])

    with units() as uow:
        newest = uow.audit.list(AuditFilter(), None, 10).items[-1].event_id
        assert uow.audit.last_event_id() == newest


def test_an_append_waits_for_the_uncommitted_one_before_it(units: UnitOfWorkFactory) -> None:
    second_done = threading.Event()

    def append_second() -> None:
        append_all(units, [audit_event(2)])
        second_done.set()

    with units() as first:
        first.audit.append(audit_event(1))
        writer = threading.Thread(target=append_second)
        writer.start()
        # While the first append is uncommitted, the second may not commit ahead of it.
        assert not second_done.wait(0.5)
        first.commit()
    writer.join(timeout=30)

    with units() as uow:
        events = uow.audit.list(AuditFilter(), None, 10).items
    assert second_done.is_set()
    assert [e.action for e in events] == ["step-1", "step-2"]
    assert events[0].event_id < events[1].event_id


def test_cursors_are_64_bit_on_every_database(units: UnitOfWorkFactory) -> None:
    beyond_32_bits = 2**40

    with units() as uow:
        assert uow.audit.list(AuditFilter(), beyond_32_bits, 10).items == []
        assert uow.grants.list(GrantFilter(), beyond_32_bits, 10).items == []
