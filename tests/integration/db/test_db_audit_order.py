"""Audit ids follow commit order, so a feed resuming after id N can never skip an earlier event."""

import secrets
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

from broker.adapters.db.audit_log import AUDIT_LOCK_KEY
from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.service.ports import AuditFilter, GrantFilter, UnitOfWorkFactory
from tests.blocking import waits_for_advisory_lock, with_application_name
from tests.records import append_all, audit_event
from tests.waiting import wait_until


def test_an_append_waits_for_the_uncommitted_one_before_it(
    units: UnitOfWorkFactory, engine: Engine, database_url: str
) -> None:
    second_engine, second_waits = _observed_writer(engine, database_url)
    happened: list[str] = []

    def append_second() -> None:
        append_all(sql_unit_of_work_factory(second_engine), [audit_event(2)])
        happened.append("second committed")

    writer = threading.Thread(target=append_second)
    try:
        with units() as first:
            first.audit.append(audit_event(1))
            writer.start()
            # While the first append is uncommitted, the second waits for it (or, if nothing
            # serialized them, has already committed ahead of it).
            wait_until(
                lambda: bool(happened) or second_waits(),
                what="the second append waiting for the first one's transaction",
            )
            happened.append("first committing")
            first.commit()
        wait_until(lambda: "second committed" in happened, what="the second append committed")
        writer.join()
    finally:
        second_engine.dispose()

    with units() as uow:
        events = uow.audit.list(AuditFilter(), None, 10).items
    assert happened == ["first committing", "second committed"]
    assert [e.action for e in events] == ["step-1", "step-2"]
    assert events[0].event_id < events[1].event_id


def _observed_writer(engine: Engine, database_url: str) -> tuple[Engine, Callable[[], bool]]:
    """An engine for a second writer, and whether that writer waits right now for the lock
    that serializes appends."""
    if engine.dialect.name == "postgresql":
        # The audit lock is an advisory lock; pg_locks shows the named session's request.
        name = f"audit-order-{secrets.token_hex(4)}"
        named = create_engine_for(with_application_name(database_url, name))
        return named, lambda: waits_for_advisory_lock(engine, name, AUDIT_LOCK_KEY)
    # SQLite's write lock, which BEGIN IMMEDIATE takes: the statement has begun and not
    # returned, i.e. SQLite is retrying it until the busy timeout (a free lock is taken at once).
    second = create_engine_for(database_url)
    running: set[str] = set()

    def began(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        running.add(statement)

    def returned(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        running.discard(statement)

    event.listen(second, "before_cursor_execute", began)
    event.listen(second, "after_cursor_execute", returned)
    return second, lambda: "BEGIN IMMEDIATE" in running


def test_cursors_are_64_bit_on_every_database(units: UnitOfWorkFactory) -> None:
    beyond_32_bits = 2**40

    with units() as uow:
        assert uow.audit.list(AuditFilter(), beyond_32_bits, 10).items == []
        assert uow.grants.list(GrantFilter(), beyond_32_bits, 10).items == []
