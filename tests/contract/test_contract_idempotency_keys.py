"""The IdempotencyKeys port: a key's first use is kept, and a second first use loses at add()."""

import threading
from dataclasses import replace
from datetime import UTC

import pytest

from broker.domain.errors import IdempotencyConflict
from broker.service.ports import IdempotencyRecord, UnitOfWorkFactory
from tests.records import idempotency_record


def stored_key(units: UnitOfWorkFactory) -> IdempotencyRecord | None:
    with units() as uow:
        return uow.idempotency.get("GrantAccess", "req-1")


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
        uow.idempotency.add(replace(idempotency_record(), fingerprint="0" * 64))

    assert stored_key(units) == idempotency_record()


def test_a_conflict_leaves_nothing_of_its_unit_of_work(units: UnitOfWorkFactory) -> None:
    with units() as uow:
        uow.idempotency.add(idempotency_record())
        uow.commit()

    with units() as uow, pytest.raises(IdempotencyConflict):
        uow.idempotency.add(idempotency_record(key="req-2"))
        uow.idempotency.add(idempotency_record())

    with units() as uow:
        assert uow.idempotency.get("GrantAccess", "req-2") is None


def start_second_use(
    units: UnitOfWorkFactory, record: IdempotencyRecord, entered: threading.Event
) -> tuple[threading.Thread, list[str]]:
    """A thread that adds `record` and commits, and the list it fills with how that went.

    The thread sets `entered` once inside its unit of work, before it adds.
    """
    outcome: list[str] = []

    def add_and_commit() -> None:
        try:
            with units() as uow:
                entered.set()
                try:
                    uow.idempotency.add(record)
                except IdempotencyConflict:
                    outcome.append("conflict at add")
                    return
                uow.commit()
                outcome.append("committed")
        except BaseException as error:  # reported by the main thread's assertion
            outcome.append(f"{type(error).__name__} after add: {error}")

    thread = threading.Thread(target=add_and_commit)
    thread.start()
    return thread, outcome


def test_a_concurrent_first_use_loses_at_add_once_the_first_commits(
    units: UnitOfWorkFactory,
) -> None:
    entered = threading.Event()
    with units() as first:
        first.idempotency.add(idempotency_record())
        second, outcome = start_second_use(
            units, replace(idempotency_record(), fingerprint="0" * 64), entered
        )
        # The second is inside a unit of work of its own, and adds while (or after) this one
        # holds the key uncommitted: a database makes it wait for this commit either way.
        assert entered.wait(timeout=30)
        first.commit()
    second.join(timeout=60)

    assert outcome == ["conflict at add"]
    assert stored_key(units) == idempotency_record()


def test_a_first_use_rolled_back_leaves_the_key_to_a_concurrent_one(
    units: UnitOfWorkFactory,
) -> None:
    entered = threading.Event()
    record = replace(idempotency_record(), fingerprint="0" * 64)
    with units() as first:
        first.idempotency.add(idempotency_record())
        second, outcome = start_second_use(units, record, entered)
        assert entered.wait(timeout=30)
    second.join(timeout=60)

    assert outcome == ["committed"]
    assert stored_key(units) == record
