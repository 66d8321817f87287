"""Instance locks shared by every broker process on one database (PostgreSQL advisory locks)."""

import os
import secrets
import subprocess
import sys
import threading

import pytest
from sqlalchemy import Engine

from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.locks import DatabaseInstanceLocks, advisory_key
from broker.adapters.locks import ProcessInstanceLocks
from tests.blocking import blocked_at, waits_for_advisory_lock, with_application_name
from tests.waiting import wait_until


def _instance_id() -> str:
    # Advisory locks are per database, not per schema: a key of its own keeps this test from
    # queueing behind a concurrent run of it.
    return f"i-{secrets.token_hex(4)}"


def test_advisory_keys_are_stable_across_processes_and_distinct() -> None:
    instance_id = "i-0123456789abcdef0"
    # Another interpreter, with its own hash seed: a key that depended on anything per process
    # (hash(), id(), a random salt) would differ there, and the replicas would not exclude
    # each other.
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    environment["PYTHONPATH"] = os.pathsep.join(sys.path)
    elsewhere = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from broker.adapters.db.locks import advisory_key;"
            " print(advisory_key(sys.argv[1]))",
            instance_id,
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )

    assert advisory_key(instance_id) == int(elsewhere.stdout)
    assert advisory_key(instance_id) != advisory_key("i-0123456789abcdef1")


# PostgreSQL only: one SQLite database serves one broker process, so there is nothing to share.
@pytest.mark.parametrize("database_kind", ["postgresql"], indirect=True)
def test_another_process_waits_for_the_holder(engine: Engine, database_url: str) -> None:
    # A second engine stands for a second broker process: its own pool, its own sessions,
    # named so that pg_locks can show what they wait for.
    name = f"locks-test-{secrets.token_hex(4)}"
    other_engine = create_engine_for(with_application_name(database_url, name))
    mine, theirs = DatabaseInstanceLocks(engine), DatabaseInstanceLocks(other_engine)
    held, free = _instance_id(), _instance_id()
    happened: list[str] = []

    def enter(instance_id: str) -> None:
        with theirs.hold(instance_id):
            happened.append(f"{instance_id} entered")

    same = threading.Thread(target=enter, args=(held,))
    other = threading.Thread(target=enter, args=(free,))
    try:
        with mine.hold(held), mine.hold(held):  # re-entrant within a process
            same.start()
            other.start()
            wait_until(lambda: f"{free} entered" in happened, what="another instance entered")
            # Seen waiting in PostgreSQL (or, if the lock failed to serialize, already in).
            wait_until(
                lambda: (
                    f"{held} entered" in happened
                    or waits_for_advisory_lock(engine, name, advisory_key(held))
                ),
                what="the other process's session waiting for the held instance's lock",
            )
            happened.append("holder leaving")
        wait_until(lambda: f"{held} entered" in happened, what="the other process entered")
        same.join()
        other.join()
        assert happened == [f"{free} entered", "holder leaving", f"{held} entered"]
    finally:
        other_engine.dispose()


def test_on_sqlite_the_process_lock_serializes(engine: Engine) -> None:
    locks = DatabaseInstanceLocks(engine)
    instance_id = _instance_id()
    happened: list[str] = []

    def enter() -> None:
        with locks.hold(instance_id):
            happened.append("waiter entered")

    waiter = threading.Thread(target=enter)
    with locks.hold(instance_id):
        waiter.start()
        # Seen blocked on the process lock (or, if it failed to serialize, already in).
        wait_until(
            lambda: (
                bool(happened)
                or blocked_at(waiter, ProcessInstanceLocks.hold_counting, "with entry.lock:")
            ),
            what="the waiter blocked on the instance's process lock",
        )
        happened.append("holder leaving")
    wait_until(lambda: "waiter entered" in happened, what="the waiter entered")
    waiter.join()
    assert happened == ["holder leaving", "waiter entered"]
