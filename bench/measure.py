"""The arithmetic of `make bench`: percentiles, rates, and which AWS actions write.

Pure functions and small value types, so that they can be tested without a server.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# AWS actions that only read start with one of these verbs; every other action counts as a
# write. Listing the readers rather than the writers errs on the side of counting an action
# the broker starts using (TagRole, AttachRolePolicy, ...) as the scarcer kind.
READ_VERBS = ("Get", "List", "Describe", "Head", "Simulate", "Lookup")


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile (0 < p <= 100): the smallest value with at least p% of
    the values at or below it. NaN for no values."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is not in (0, 100]")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def is_write(action: str) -> bool:
    """Whether an AWS call may change AWS. A query-protocol action (GetRole, PutRolePolicy) is
    a read when its name starts with a read verb; a REST call without an action, shown as
    "METHOD" (an S3 "GET"), is a read for GET and HEAD."""
    if action in ("GET", "HEAD"):
        return False
    return not action.startswith(READ_VERBS)


@dataclass
class Latencies:
    """The calls of one target in one phase: how many succeeded, how long each took, and for
    how long the phase ran (the sum of its slices)."""

    seconds: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0
    first_error: str = ""

    def add(self, other: Latencies) -> None:
        self.seconds.extend(other.seconds)
        self.elapsed += other.elapsed
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error

    @property
    def calls(self) -> int:
        return len(self.seconds)

    @property
    def rate(self) -> float:
        """Successful calls per second; NaN when nothing ran."""
        return self.calls / self.elapsed if self.elapsed > 0 else math.nan

    @property
    def p50(self) -> float:
        return percentile(self.seconds, 50)

    @property
    def p99(self) -> float:
        return percentile(self.seconds, 99)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; NaN when either is unknown or the denominator is 0."""
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


@dataclass(frozen=True)
class AwsTally:
    """The AWS calls one operation made, as the proxy at the emulator's boundary saw them."""

    actions: Counter[str]

    @classmethod
    def of(cls, actions: Iterable[str]) -> AwsTally:
        return cls(Counter(actions))

    @property
    def calls(self) -> int:
        return sum(self.actions.values())

    @property
    def writes(self) -> int:
        return sum(n for action, n in self.actions.items() if is_write(action))

    @property
    def reads(self) -> int:
        return self.calls - self.writes

    def count(self, action: str) -> int:
        return self.actions[action]

    def breakdown(self) -> str:
        """ "GetRole 2, PutRolePolicy 1, ...": most frequent first, then by name."""
        ordered = sorted(self.actions.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{action} {n}" for action, n in ordered) or "none"
