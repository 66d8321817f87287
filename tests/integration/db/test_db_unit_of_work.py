"""SqlUnitOfWork: one transaction over all stores, safe to use from several threads."""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from broker.domain.audit import NewAuditEvent, Outcome
from broker.domain.grants import Grant, InstanceResources
from broker.service.ports import (
    AuditFilter,
    GrantFilter,
    IdempotencyRecord,
    InstanceRecord,
    UnitOfWorkFactory,
)

GrantMaker = Callable[..., Grant]
INSTANCE = "i-0123456789abcdef0"
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
                    uow.grants.for_instance(grant.instance_id)
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
