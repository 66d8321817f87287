"""Per-instance serialization across broker processes that share one PostgreSQL database."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

from broker.adapters.locks import ProcessInstanceLocks


def advisory_key(instance_id: str) -> int:
    """A stable signed 64-bit key for the instance among PostgreSQL's advisory locks."""
    digest = hashlib.sha256(f"accessbroker:instance:{instance_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class DatabaseInstanceLocks:
    """The process's own lock first, then, on PostgreSQL, a session advisory lock that every
    replica respects; the outermost holder alone takes it, on a connection of its own.

    On SQLite there is only this process to serialize, so the process lock is enough.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._process = ProcessInstanceLocks()
        self._shared = engine.dialect.name == "postgresql"

    @contextmanager
    def hold(self, instance_id: str) -> Iterator[None]:
        with self._process.hold_counting(instance_id) as depth:
            if depth > 1 or not self._shared:
                yield
                return
            # Autocommit: the lock belongs to the session, and a connection left "idle in
            # transaction" for a whole convergence could be cut by the server's idle timeout,
            # silently dropping the lock with it.
            with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
                key = {"key": advisory_key(instance_id)}
                lock.execute(text("SELECT pg_advisory_lock(:key)"), key)
                try:
                    yield
                finally:
                    lock.execute(text("SELECT pg_advisory_unlock(:key)"), key)
