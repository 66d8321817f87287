"""The goals of issue 12 ("Performance and AWS economy"), each beside the number it judges."""

from __future__ import annotations

import math
from dataclasses import dataclass

MET = "met"
NOT_MET = "NOT MET"
# No number to judge (the phase failed or did not run).
UNKNOWN = "?"


@dataclass(frozen=True)
class Goal:
    """A bound on one measured number: at most `limit` (or at least, when `at_least`)."""

    text: str
    limit: float
    at_least: bool = False

    def verdict(self, value: float) -> str:
        if math.isnan(value):
            return UNKNOWN
        within = value >= self.limit if self.at_least else value <= self.limit
        return MET if within else NOT_MET


Judged = tuple[Goal, float]  # a goal and the measured number it judges


# Reads and the no-op grant, as ratios to the echo server in the same run.
GET_GRANT_THROUGHPUT = Goal(">= 0.5 x echo", 0.5, at_least=True)
GET_GRANT_P99 = Goal("p99 <= 3 x echo's p99", 3.0)
REPEATED_GRANT_THROUGHPUT = Goal(">= 0.35 x echo", 0.35, at_least=True)
# "A no-op request writes nothing" (DESIGN.md, Economy); issue 12: "a repeated identical
# grant writes nothing".
REPEATED_GRANT_WRITES = Goal("0 writes", 0)

# AWS calls per operation, counted at the emulator's boundary.
FIRST_GRANT_CALLS = Goal("<= 8 calls", 8)
ANOTHER_BUCKET_CALLS = Goal("<= 2 calls", 2)
REVOKE_ONE_OF_TWO_CALLS = Goal("<= 2 calls", 2)
# The burst's bounds are stated for this many concurrent grants on one instance.
BURST_SIZE = 20
BURST_PUT_ROLE_POLICY = Goal("<= 3 PutRolePolicy", 3)
BURST_CALLS = Goal("<= 60 calls", 60)
BURST_SECONDS = Goal("<= 3 s", 3.0)
# Issue 12 states the drift pass's bound at 30 instances (0.3 calls per instance, so 9 calls)
# and at 1,000 (40 calls): it must grow with pages of AWS listings, not with instances. Fewer
# instances must cost no more than 30 do.
DRIFT_CALLS_PER_INSTANCE = Goal("<= 0.3 per instance", 0.3)
DRIFT_CALLS_UP_TO_30 = Goal("<= 9 calls (0.3 per instance at 30)", 9)
DRIFT_CALLS_AT_1000 = Goal("<= 40 calls at 1,000 instances", 40)
# "scales with pages: seconds, not minutes" (300 instances); judged from 300 instances up.
DRIFT_SECONDS_AT_300 = Goal("seconds, not minutes (< 60 s at 300 instances)", 60.0)


def drift_goals(instances: int, calls: float, seconds: float) -> list[Judged]:
    """The bounds that apply to a drift pass over `instances` instances, each beside the number
    it judges (all its calls, its calls per instance, or its seconds)."""
    if instances <= 30:
        return [(DRIFT_CALLS_UP_TO_30, calls)]
    judged = [(DRIFT_CALLS_PER_INSTANCE, calls / instances)]
    if instances >= 1000:
        judged.append((DRIFT_CALLS_AT_1000, calls))
    if instances >= 300:
        judged.append((DRIFT_SECONDS_AT_300, seconds))
    return judged


# The scale run: the broker's peak RSS, which must not grow with the number of grants.
SCALE_PEAK_RSS = Goal("peak RSS <= 300 MiB", 300.0)
