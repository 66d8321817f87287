"""Per-instance serialization within one process."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ProcessInstanceLocks:
    """One re-entrant lock per instance id: a use case that holds it may converge inside it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}

    @contextmanager
    def hold(self, instance_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(instance_id, threading.RLock())
        with lock:
            yield
