"""The Telemetry port: metrics kept in memory for Prometheus until /metrics (if served) reads
them (they exist before the endpoint does, so that the service layer can be built first), and
spans made with the broker's OpenTelemetry tracer (a no-op one when tracing is off)."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry.trace import NoOpTracer, Tracer
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.registry import Collector

from broker.domain.quotas import AccountUsage
from broker.service.ports import Span

# The figures of AccountUsage, each a gauge by account: accessbroker_iam_roles, …_roles_quota.
USAGE_FIGURES = ("roles", "roles_quota", "instance_profiles", "instance_profiles_quota")

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

        self._usage = {
            figure: Gauge(
                f"accessbroker_iam_{figure}",
                f"IAM {figure.replace('_', ' ')} of each account, as last read.",
                ["account"],
                registry=None,
            )
            for figure in USAGE_FIGURES
        }
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

    def account_usage_read(self, account: str, usage: AccountUsage) -> None:
        for figure, gauge in self._usage.items():
            gauge.labels(account).set(getattr(usage, figure))

    def collectors(self) -> list[Collector]:
        return [self._convergence, self._authorization, *self._usage.values()]
