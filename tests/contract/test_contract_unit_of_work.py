"""The UnitOfWork port: one transaction over all stores, safe to use from several threads."""

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from broker.domain.audit import NewAuditEvent, Outcome
from broker.domain.grants import Grant, InstanceResources
from broker.service.ports import (
    AuditFilter,
    GrantFilter,
    IdempotencyRecord,
    InstanceRecord,
    UnitOfWork,
    UnitOfWorkFactory,
)
from tests.places import at_home
from tests.records import GrantMaker, audit_event, idempotency_record, instance_record
from tests.waiting import wait_until

INSTANCE = at_home("i-0123456789abcdef0")
MOMENT = datetime(2026, 7, 1, 12, 30, 15, tzinfo=UTC)


def write_to_every_store(units: UnitOfWorkFactory, grant: Grant, commit: bool) -> None:
    with units() as uow:
        uow.grants.add(grant)
        uow.audit.append(NewAuditEvent(MOMENT, "alice", "grant-requested", Outcome.SUCCESS))
        uow.idempotency.add(IdempotencyRecord("req-1", "GrantAccess", "f" * 64, "g", MOMENT))
        uow.instances.save(InstanceRecord(INSTANCE, InstanceResources(), "{}", MOMENT))
        if commit:
            uow.commit()


def what_is_stored(units: UnitOfWorkFactory, grant_id: str) -> tuple[bool, int, bool, bool]:
    with units() as uow:
        return (
            uow.grants.get(grant_id) is not None,
            len(uow.audit.list(AuditFilter(), after=None, limit=10).items),
            uow.idempotency.get("GrantAccess", "req-1") is not None,
            uow.instances.get(INSTANCE) is not None,
        )


def test_leaving_without_commit_persists_nothing(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    grant = make_grant()

    write_to_every_store(units, grant, commit=False)

    assert what_is_stored(units, grant.grant_id) == (False, 0, False, False)


def test_commit_persists_every_store(units: UnitOfWorkFactory, make_grant: GrantMaker) -> None:
    grant = make_grant()

    write_to_every_store(units, grant, commit=True)

    assert what_is_stored(units, grant.grant_id) == (True, 1, True, True)


def test_an_error_inside_rolls_back(units: UnitOfWorkFactory, make_grant: GrantMaker) -> None:
    grant = make_grant()

    with pytest.raises(RuntimeError, match="convergence failed"), units() as uow:
        uow.grants.add(grant)
        uow.grants.get(grant.grant_id)  # flushed to the database, not only held in the session
        raise RuntimeError("convergence failed")

    assert what_is_stored(units, grant.grant_id) == (False, 0, False, False)


def test_writes_after_a_commit_need_a_commit_of_their_own(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    committed, dropped = make_grant(), make_grant()

    with units() as uow:
        uow.grants.add(committed)
        uow.commit()
        uow.grants.add(dropped)

    with units() as uow:
        assert uow.grants.get(committed.grant_id) == committed
        assert uow.grants.get(dropped.grant_id) is None


# Each store's write, given a time without a UTC offset.
NAIVE = datetime(2026, 7, 1, 12, 30, 15)
NAIVE_WRITES: dict[str, Callable[[UnitOfWork, Grant], None]] = {
    "grant": lambda uow, grant: uow.grants.add(replace(grant, created_at=NAIVE)),
    "grant-expiry": lambda uow, grant: uow.grants.add(replace(grant, expires_at=NAIVE)),
    "audit-event": lambda uow, _: uow.audit.append(replace(audit_event(1), time=NAIVE)),
    "idempotency-key": lambda uow, _: uow.idempotency.add(
        replace(idempotency_record(), created_at=NAIVE)
    ),
    "instance-record": lambda uow, _: uow.instances.save(
        replace(instance_record("", "iip-assoc-1"), updated_at=NAIVE)
    ),
}


@pytest.mark.parametrize("write", NAIVE_WRITES.values(), ids=NAIVE_WRITES.keys())
def test_every_store_refuses_a_time_without_an_offset(
    units: UnitOfWorkFactory, make_grant: GrantMaker, write: Callable[[UnitOfWork, Grant], None]
) -> None:
    # Which zone a naive time meant is a guess; the stores hold UTC and refuse to guess.
    with units() as uow, pytest.raises(ValueError, match="naive datetime"):
        write(uow, make_grant())


def test_two_threads_write_through_separate_units_of_work(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    rounds = 5
    work = [
        [make_grant(instance_id=instance) for _ in range(rounds)]
        for instance in ("i-0aaaaaaaa", "i-0bbbbbbbb")
    ]
    errors: list[BaseException] = []
    start_together = threading.Barrier(len(work))

    def write_rounds(grants: list[Grant]) -> None:
        try:
            for grant in grants:
                start_together.wait(timeout=30)
                # Read, pause so the other thread's transaction overlaps, then write.
                with units() as uow:
                    uow.grants.for_instance(grant.instance)
                    time.sleep(0.02)
                    uow.grants.add(grant)
                    uow.audit.append(
                        NewAuditEvent(MOMENT, "system", "grant-requested", Outcome.SUCCESS)
                    )
                    uow.commit()
        except BaseException as error:  # reported by the main thread's assertion
            errors.append(error)
            start_together.abort()

    threads = [threading.Thread(target=write_rounds, args=(grants,)) for grants in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    with units() as uow:
        assert len(uow.grants.list(GrantFilter(), after=None, limit=100).items) == 2 * rounds
        assert len(uow.audit.list(AuditFilter(), after=None, limit=100).items) == 2 * rounds


def test_a_read_only_unit_of_work_sees_what_is_committed_and_refuses_to_commit(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    grant = make_grant()
    write_to_every_store(units, grant, commit=True)

    with units(read_only=True) as uow:
        assert uow.grants.get(grant.grant_id) == grant
        with pytest.raises(RuntimeError, match="read-only unit of work"):
            uow.commit()


def _in_another_thread(work: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # reported by the caller's assertion
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_a_reader_and_a_writer_never_wait_for_each_other(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    # A reader open while a writer writes, and a writer open while a reader reads: each ends
    # while the other is still open. On SQLite, a unit of work holding the write lock would
    # make the other wait out the busy timeout (30 s) and then fail.
    first, second = make_grant(), make_grant()
    write_to_every_store(units, first, commit=True)

    def write_second() -> None:
        with units() as uow:
            uow.grants.add(second)
            uow.commit()

    def read_first() -> None:
        with units(read_only=True) as uow:
            assert uow.grants.get(first.grant_id) == first

    with units(read_only=True) as reading:
        assert reading.grants.get(first.grant_id) == first
        writer, writer_errors = _in_another_thread(write_second)
        wait_until(lambda: not writer.is_alive(), what="the writer done while a reader is open")
    with units() as writing:
        writing.grants.add(make_grant())
        reader, reader_errors = _in_another_thread(read_first)
        wait_until(lambda: not reader.is_alive(), what="the reader done while a writer is open")

    assert writer_errors == reader_errors == []
    assert what_is_stored(units, second.grant_id)[0]
