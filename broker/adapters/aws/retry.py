"""Retrying AWS calls per kind of failure, each kind within its own time budget.

botocore's own retries are kept to a minimum (see clients.py): this policy is what bounds the
time a call may take, counts and logs every retry, and stops early at the caller's deadline.

- throttling (`Throttling`, `RequestLimitExceeded`, ...): AWS asks us to slow down;
- server errors (HTTP 5xx, or an answer botocore cannot read, e.g. a proxy's error page);
- connection errors (refused, dropped, timed out);
- propagation: a call that fails only because IAM has not yet propagated a new role or profile
  (no botocore retry mode covers that; Terraform's AWS provider waits 2 minutes). Each call says
  which of its errors mean that.

A kind's budget runs from that kind's first failure within the call; waits are jittered
exponential backoff, cut short so the last attempt falls at the end of the budget. A spent budget
raises AwsUnavailable; a caller's deadline (broker.service.deadlines) that would pass before the
next attempt raises DeadlineExceeded at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError
from botocore.parsers import ResponseParserError
from tenacity import RetryCallState, RetryError, Retrying, wait_random_exponential

from broker.adapters.aws.errors import THROTTLING_CODES, error_code, translate
from broker.domain.errors import AwsUnavailable, DeadlineExceeded
from broker.service import deadlines

log = logging.getLogger(__name__)

T = TypeVar("T")


class Fault(StrEnum):
    THROTTLING = "throttling"
    SERVER_ERROR = "server_error"
    CONNECTION = "connection"
    PROPAGATION = "propagation"


@dataclass(frozen=True)
class RetryBudgets:
    """Seconds each kind of failure may be retried within one call."""

    throttling: float = 30.0
    server_error: float = 15.0
    connection: float = 15.0
    propagation: float = 120.0

    def of(self, fault: Fault) -> float:
        return float(getattr(self, fault.value))


@dataclass(frozen=True)
class Backoff:
    first: float  # the scale of the first waits (seconds)
    most: float  # no single wait is longer


# Throttling backs off harder: retrying fast only deepens it.
_BACKOFF = {
    Fault.THROTTLING: Backoff(first=0.5, most=8.0),
    Fault.SERVER_ERROR: Backoff(first=0.25, most=4.0),
    Fault.CONNECTION: Backoff(first=0.25, most=4.0),
    # Propagation usually takes a second or two; a long budget must not become a burst of calls.
    Fault.PROPAGATION: Backoff(first=0.25, most=5.0),
}


class RetryCounter:
    """Thread-safe tallies of retries and of calls that gave up, by AWS action and fault kind.

    One counter is shared by the broker's BotoIam and BotoEc2 (their `.retries`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._retries: Counter[tuple[str, Fault]] = Counter()
        self._gave_up: Counter[tuple[str, Fault]] = Counter()

    def record_retry(self, action: str, fault: Fault) -> None:
        with self._lock:
            self._retries[action, fault] += 1

    def record_gave_up(self, action: str, fault: Fault) -> None:
        with self._lock:
            self._gave_up[action, fault] += 1

    def retries(self) -> dict[tuple[str, Fault], int]:
        """Retries so far per (action, fault), e.g. {("CreateRole", Fault.THROTTLING): 3}."""
        with self._lock:
            return dict(self._retries)

    def gave_up(self) -> dict[tuple[str, Fault], int]:
        """Calls that ended on a spent budget or the caller's deadline, per (action, fault)."""
        with self._lock:
            return dict(self._gave_up)

    def by_fault(self) -> dict[Fault, int]:
        """Retries so far per fault kind; every kind present, zero when none."""
        with self._lock:
            totals = dict.fromkeys(Fault, 0)
            for (_, fault), count in self._retries.items():
                totals[fault] += count
            return totals

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._retries.values())


@dataclass(frozen=True)
class Propagation:
    """Which errors of one call mean "not propagated yet", and what to say when it never is."""

    is_propagation_error: Callable[[BaseException], bool]
    gave_up: str


@dataclass
class AwsRetry:
    """The retry policy of every AWS call an adapter makes."""

    budgets: RetryBudgets = field(default_factory=RetryBudgets)
    counter: RetryCounter = field(default_factory=RetryCounter)
    sleep: Callable[[float], None] = time.sleep
    # What the budgets are measured with. Tests pass a fake clock that their fake `sleep`
    # advances, so a budget's arithmetic cannot depend on the machine's load. (The caller's
    # deadline stays in real time: broker.service.deadlines.)
    clock: Callable[[], float] = time.monotonic

    def call(
        self, action: str, attempt: Callable[[], T], propagation: Propagation | None = None
    ) -> T:
        """attempt()'s result, retrying what is worth retrying; other errors propagate unchanged."""
        return _Call(self, action, propagation).run(attempt)


class _Call:
    """The state of one call's retries: when each fault kind first failed, and why it stopped."""

    def __init__(self, policy: AwsRetry, action: str, propagation: Propagation | None) -> None:
        self._policy, self._action, self._propagation = policy, action, propagation
        self._first_failure: dict[Fault, float] = {}
        self._last_failure: BaseException | None = None
        self._stopped_by_deadline = False

    def run(self, attempt: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=self._should_retry,
            wait=self._wait,
            stop=self._stop,
            before_sleep=self._before_sleep,
            sleep=self._policy.sleep,
        )
        try:
            result: T = retrying(self._checked, attempt)
            return result
        except RetryError as gave_up:
            raise self._gave_up(gave_up.last_attempt.exception()) from (
                gave_up.last_attempt.exception()
            )

    def _checked(self, attempt: Callable[[], T]) -> T:
        left = deadlines.seconds_left()
        if left is not None and left <= 0:
            if self._last_failure is None:
                raise _deadline_passed(self._action, "before the call")
            # The deadline passed during the wait before this retry (a wait overruns on a busy
            # machine): the caller's deadline cut the retries short, as when _stop sees it.
            self._stopped_by_deadline = True
            raise self._gave_up(self._last_failure) from self._last_failure
        return attempt()

    def _fault(self, error: BaseException | None) -> Fault | None:
        if error is None:
            return None
        if self._propagation is not None and self._propagation.is_propagation_error(error):
            return Fault.PROPAGATION
        return classify(error)

    def _should_retry(self, state: RetryCallState) -> bool:
        fault = self._fault(_exception(state))
        if fault is not None:
            self._first_failure.setdefault(fault, self._policy.clock())
            self._last_failure = _exception(state)
        return fault is not None

    def _budget_left(self, fault: Fault) -> float:
        spent = self._policy.clock() - self._first_failure[fault]
        return self._policy.budgets.of(fault) - spent

    def _wait(self, state: RetryCallState) -> float:
        fault = self._fault(_exception(state))
        assert fault is not None, "waits come only after a retryable failure"
        backoff = _BACKOFF[fault]
        jittered = wait_random_exponential(multiplier=backoff.first, max=backoff.most)(state)
        return max(0.0, min(jittered, self._budget_left(fault)))

    def _stop(self, state: RetryCallState) -> bool:
        fault = self._fault(_exception(state))
        assert fault is not None, "stops are considered only after a retryable failure"
        left = deadlines.seconds_left()
        if left is not None and left <= state.upcoming_sleep:
            self._stopped_by_deadline = True
            return True
        return self._budget_left(fault) <= 0

    def _before_sleep(self, state: RetryCallState) -> None:
        error = _exception(state)
        fault = self._fault(error)
        assert error is not None and fault is not None
        self._policy.counter.record_retry(self._action, fault)
        log.info(
            "retrying AWS %s after %s (%s), attempt %d, in %.2f s",
            self._action,
            fault.value,
            _describe(error),
            state.attempt_number + 1,
            state.upcoming_sleep,
        )

    def _gave_up(self, error: BaseException | None) -> AwsUnavailable | DeadlineExceeded:
        fault = self._fault(error)
        assert error is not None and fault is not None
        self._policy.counter.record_gave_up(self._action, fault)
        if self._stopped_by_deadline:
            log.info("AWS %s: the caller's deadline cut %s retries short", self._action, fault)
            return _deadline_passed(self._action, f"{fault.value}: {_describe(error)}")
        budget = self._policy.budgets.of(fault)
        log.warning("AWS %s: gave up after %g s of %s", self._action, budget, fault.value)
        if fault is Fault.PROPAGATION:
            assert self._propagation is not None
            return AwsUnavailable(f"{self._propagation.gave_up} within {budget:g}s")
        assert isinstance(error, ClientError | BotoCoreError | ResponseParserError)
        return AwsUnavailable(f"{translate(self._action, error)}; retried for {budget:g}s")


def classify(error: BaseException) -> Fault | None:
    """The kind of a transient failure; None for anything retrying will not fix."""
    if isinstance(error, ClientError):
        if error_code(error) in THROTTLING_CODES:
            return Fault.THROTTLING
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return Fault.SERVER_ERROR if status >= 500 else None
    if isinstance(error, ResponseParserError):
        return Fault.SERVER_ERROR
    if isinstance(error, ConnectionError | HTTPClientError):
        return Fault.CONNECTION
    return None


def _deadline_passed(action: str, where: str) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"the caller's deadline passed during AWS {action} ({where}); "
        "recorded work is finished by the broker's background sweep"
    )


def _exception(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None


def _describe(error: BaseException) -> str:
    return error_code(error) if isinstance(error, ClientError) else type(error).__name__
