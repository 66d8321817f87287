"""The caller's deadline, carried from the entrypoint to the AWS adapters' retries.

The gRPC servicer sets it for the call it is serving; the adapters stop retrying when it would
pass and raise DeadlineExceeded. Work without a caller (the background sweep) has none.
A context variable keeps it to the thread (or task) serving that call.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# time.monotonic() at which the caller stops waiting; None when nobody waits.
_deadline: ContextVar[float | None] = ContextVar("broker_deadline", default=None)


@contextmanager
def deadline_in(seconds: float | None) -> Iterator[None]:
    """Within the block, the deadline is `seconds` from now (None: no deadline)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + max(seconds, 0.0))
    try:
        yield
    finally:
        _deadline.reset(token)


def seconds_left() -> float | None:
    """Seconds until the deadline (negative once passed), or None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
