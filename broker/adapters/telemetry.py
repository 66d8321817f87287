"""The Telemetry port as Prometheus metrics, kept in memory until /metrics (if served) reads
them: they exist before the endpoint does, so that the service layer can be built first."""

from prometheus_client import Counter, Histogram
from prometheus_client.registry import Collector

# Seconds: a convergence that only puts a policy takes a fraction of one; a first grant waits
# out IAM's propagation, which can take minutes.
CONVERGENCE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class PrometheusTelemetry:
    def __init__(self) -> None:
        self._convergence = Histogram(
            "accessbroker_convergence_seconds",
            "How long convergences of one instance took, by how they ended.",
            ["outcome"],
            buckets=CONVERGENCE_BUCKETS,
            registry=None,
        )

        self._authorization = Counter(
            "accessbroker_authorization_decisions",
            "The access policy's decisions, by command and outcome (allowed, denied).",
            ["command", "outcome"],
            registry=None,
        )

    def convergence_took(self, seconds: float, outcome: str) -> None:
        self._convergence.labels(outcome).observe(seconds)

    def authorization_decided(self, command: str, *, allowed: bool) -> None:
        self._authorization.labels(command, "allowed" if allowed else "denied").inc()

    def collectors(self) -> list[Collector]:
        return [self._convergence, self._authorization]
