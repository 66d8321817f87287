"""Instance locks shared by every broker process on one database (PostgreSQL advisory locks)."""

import threading

import pytest
from sqlalchemy import Engine

from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.locks import DatabaseInstanceLocks, advisory_key


def test_advisory_keys_are_stable_and_distinct() -> None:
    assert advisory_key("i-0123456789abcdef0") == advisory_key("i-0123456789abcdef0")
    assert advisory_key("i-0123456789abcdef0") != advisory_key("i-0123456789abcdef1")


def test_another_process_waits_for_the_holder(engine: Engine, database_url: str) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("one SQLite database serves one broker process; nothing to share")
    # A second engine stands for a second broker process: its own pool, its own sessions.
    other_engine = create_engine_for(database_url)
    mine, theirs = DatabaseInstanceLocks(engine), DatabaseInstanceLocks(other_engine)
    entered = {"same": threading.Event(), "other": threading.Event()}

    def enter(instance_id: str, name: str) -> None:
        with theirs.hold(instance_id):
            entered[name].set()

    try:
        with mine.hold("i-0000000a"), mine.hold("i-0000000a"):  # re-entrant within a process
            same = threading.Thread(target=enter, args=("i-0000000a", "same"))
            other = threading.Thread(target=enter, args=("i-0000000b", "other"))
            same.start()
            other.start()
            assert entered["other"].wait(5)
            assert not entered["same"].wait(0.5)
        same.join(10)
        other.join(10)
        assert entered["same"].is_set()
    finally:
        other_engine.dispose()


def test_on_sqlite_the_process_lock_serializes(engine: Engine) -> None:
    locks = DatabaseInstanceLocks(engine)
    entered = threading.Event()

    def enter() -> None:
        with locks.hold("i-0000000a"):
            entered.set()

    with locks.hold("i-0000000a"):
        waiter = threading.Thread(target=enter)
        waiter.start()
        assert not entered.wait(0.3)
    waiter.join(5)
    assert entered.is_set()
