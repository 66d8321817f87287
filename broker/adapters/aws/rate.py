"""A budget for AWS writes: one token bucket shared by everything that writes to one account.

IAM is a global control plane with low request rates per account. Requests, the expiry sweep
and drift repair all write to it; a burst of their work spent at once would be throttled and
then retried, slowing every caller and the account's other users. Taking a token before each
write attempt spreads the burst out instead: the broker waits, it does not get throttled.
"""

import threading
import time
from collections.abc import Callable

from broker.domain.errors import DeadlineExceeded
from broker.service import deadlines


class WriteRate:
    """Up to `per_second` writes a second on average, and bursts of up to `burst` at once."""

    def __init__(
        self,
        per_second: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("a write rate is a positive number of calls a second")
        self._rate = per_second
        self._burst = burst if burst is not None else max(1.0, per_second)
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens, self._refilled = self._burst, clock()

    def take(self, action: str) -> None:
        """Returns once a write may be made; DeadlineExceeded, taking nothing, when the wait
        for its token would outlast the caller's deadline."""
        with self._lock:
            wait = self._reserve(deadlines.seconds_left(), action)
        if wait > 0:
            self._sleep(wait)

    def _reserve(self, left: float | None, action: str) -> float:
        """Takes the next token, possibly one not yet refilled; answers how long to wait for it.
        Reserving under the lock keeps waiting callers in order, each a token's time apart."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        wait = max(0.0, (1 - self._tokens) / self._rate)
        if left is not None and wait >= left:
            raise DeadlineExceeded(
                f"AWS {action} would wait {wait:.1f} s for the write budget "
                "(BROKER_AWS_WRITE_RATE), past the caller's deadline"
            )
        self._tokens -= 1
        return wait
