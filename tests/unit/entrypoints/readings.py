"""What /metrics reads the broker's own metrics from, as a test sets it."""

from dataclasses import dataclass, field

from prometheus_client.registry import Collector

from broker.domain.access import GrantState
from broker.service.ports import StateCount


@dataclass
class Readings:
    grants: dict[GrantState, StateCount] = field(default_factory=dict)
    calls: dict[tuple[str, str, str], int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    kept: list[Collector] = field(default_factory=list)

    def grant_counts(self) -> dict[GrantState, StateCount]:
        return self.grants

    def aws_call_counts(self) -> dict[tuple[str, str, str], int]:
        return self.calls

    def aws_retry_counts(self) -> dict[str, int]:
        return self.retries

    def collectors(self) -> list[Collector]:
        return self.kept
