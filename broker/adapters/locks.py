"""Per-instance serialization within one process (the InstanceLocks port)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class _Entry:
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Threads holding or waiting for the lock; the entry goes away when none are left.
    users: int = 0
    # How many times the holder has entered it; only the holder changes this.
    depth: int = 0


class ProcessInstanceLocks:
    """One re-entrant lock per instance id: a use case that holds it may converge inside it.

    Entries live only while someone holds or waits for them, so the map stays as small as the
    work in flight, however many instances the broker has seen.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    @contextmanager
    def hold(self, instance_id: str) -> Iterator[None]:
        with self.hold_counting(instance_id):
            yield

    @contextmanager
    def hold_counting(self, instance_id: str) -> Iterator[int]:
        """Like hold(), yielding how deep this thread is in (1 for the outermost hold)."""
        with self._guard:
            entry = self._entries.setdefault(instance_id, _Entry())
            entry.users += 1
        try:
            with entry.lock:
                entry.depth += 1
                try:
                    yield entry.depth
                finally:
                    entry.depth -= 1
        finally:
            with self._guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._entries[instance_id]

    def __len__(self) -> int:
        """Instances with a holder or a waiter."""
        with self._guard:
            return len(self._entries)
