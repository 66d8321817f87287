"""The Telemetry port: metrics kept in memory for Prometheus until /metrics (if served) reads
them (they exist before the endpoint does, so that the service layer can be built first), and
spans made with the broker's OpenTelemetry tracer (a no-op one when tracing is off)."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry.trace import NoOpTracer, Tracer
from prometheus_client import Counter, Histogram
from prometheus_client.registry import Collector

from broker.service.ports import Span

# Seconds: a convergence that only puts a policy takes a fraction of one; a first grant waits
# out IAM's propagation, which can take minutes.
CONVERGENCE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class BrokerTelemetry:
    def __init__(self, tracer: Tracer | None = None) -> None:
        self._tracer = tracer or NoOpTracer()
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

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, str]) -> Iterator[Span]:
        with self._tracer.start_as_current_span(name, attributes=dict(attributes)) as span:
            yield span

    def convergence_took(self, seconds: float, outcome: str) -> None:
        self._convergence.labels(outcome).observe(seconds)

    def authorization_decided(self, command: str, *, allowed: bool) -> None:
        self._authorization.labels(command, "allowed" if allowed else "denied").inc()

    def collectors(self) -> list[Collector]:
        return [self._convergence, self._authorization]
