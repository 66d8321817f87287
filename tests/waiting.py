"""Waiting for an event, not for the clock: the one way a test waits for something to happen.

A test that sleeps and then checks passes or fails with the machine's load. These helpers poll
a condition until it holds, with a deadline generous enough for a loaded 2-core machine, and
fail naming what never happened. They return as soon as the condition holds, so the generous
deadline costs nothing when the code is right.
"""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Long enough for a broker process, an emulator and another suite all sharing two busy cores.
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.1


class NeverHappened(AssertionError):
    """What a test waited for did not happen within the deadline."""


def wait_for(
    observe: Callable[[], T],
    until: Callable[[T], bool],
    *,
    what: str,
    timeout: float = WAIT_SECONDS,
    interval: float = POLL_SECONDS,
) -> T:
    """The first observation for which `until` holds; NeverHappened naming `what` and the last
    observation when none does within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        seen = observe()
        if until(seen):
            return seen
        if time.monotonic() > deadline:
            raise NeverHappened(f"{what}: not within {timeout:g}s; last seen: {seen!r}")
        time.sleep(interval)


def wait_until(
    condition: Callable[[], bool],
    *,
    what: str,
    timeout: float = WAIT_SECONDS,
    interval: float = POLL_SECONDS,
) -> None:
    """Returns once `condition()` holds; NeverHappened naming `what` otherwise."""
    wait_for(condition, bool, what=what, timeout=timeout, interval=interval)
