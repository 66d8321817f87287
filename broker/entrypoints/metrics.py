"""`/metrics` in the Prometheus text format (BROKER_METRICS_LISTEN), and the broker's own
metrics, read when scraped rather than kept: the grants by state and how long the oldest
pending and revoking ones have waited, from the database (one grouped query), the AWS calls and
retries the adapters counted, and the build.
"""

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from broker.domain.access import GrantState
from broker.domain.audit_chain import ChainReport
from broker.domain.errors import BrokerError
from broker.entrypoints.grpc.metrics import ServerMetrics
from broker.release import release
from broker.service.commands import DeliveryReport
from broker.service.ports import StateCount
from broker.settings import ConfigurationError

log = logging.getLogger(__name__)

OFF = "off"


class Readings(Protocol):
    """What the broker's own metrics are read from, at each scrape."""

    def grant_counts(self) -> Mapping[GrantState, StateCount]: ...
    def aws_call_counts(self) -> Mapping[tuple[str, str, str], int]: ...
    def aws_retry_counts(self) -> Mapping[str, int]: ...
    def collectors(self) -> Iterable[Collector]:
        """Metrics kept elsewhere, to serve as they are."""
        ...


class BrokerCollector(Collector):
    """The broker's own metrics, computed at each scrape: accessbroker_grants{state},
    accessbroker_oldest_grant_age_seconds{state}, accessbroker_aws_calls_total{service,action,
    outcome}, accessbroker_aws_retries_total{fault} and accessbroker_build_info."""

    def __init__(self, readings: Readings) -> None:
        self._readings = readings

    def collect(self) -> Iterator[Metric]:
        yield _build_info()
        yield from self._aws()
        try:
            counts = self._readings.grant_counts()
        except BrokerError as error:  # the database is away: the scrape still answers
            log.warning("grants not counted for /metrics: %s", error)
            return
        yield from _grants(counts, datetime.now(UTC))

    def _aws(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "accessbroker_aws_calls",
            "AWS calls (each attempt), by service, action and outcome.",
            labels=["service", "action", "outcome"],
        )
        for labels, count in sorted(self._readings.aws_call_counts().items()):
            calls.add_metric(list(labels), count)
        yield calls
        retries = CounterMetricFamily(
            "accessbroker_aws_retries", "AWS calls retried, by fault.", labels=["fault"]
        )
        for fault, count in sorted(self._readings.aws_retry_counts().items()):
            retries.add_metric([fault], count)
        yield retries


@dataclass(frozen=True)
class MetricsServer:
    url: str
    _server: WSGIServer
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class SweepMetrics:
    """What the background sweep does, kept as it happens: its runs by chore and outcome, the
    time of each chore's last success with its interval (an alert compares the two), the
    drift it finds by kind and whether it was repaired, and the audit chain's last verdict."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "accessbroker_sweep_runs",
            "Runs of each chore of the background sweep, by outcome.",
            ["chore", "outcome"],
            registry=registry,
        )
        self.last_success = Gauge(
            "accessbroker_sweep_last_success_timestamp_seconds",
            "When each chore of the background sweep last got through (Unix time).",
            ["chore"],
            registry=registry,
        )
        self.interval = Gauge(
            "accessbroker_sweep_interval_seconds",
            "How often each chore of the background sweep runs.",
            ["chore"],
            registry=registry,
        )
        self.drift = Counter(
            "accessbroker_drift_findings",
            "Drift the sweep found, by kind and whether it was repaired.",
            ["kind", "repaired"],
            registry=registry,
        )
        self.unrepaired = Gauge(
            "accessbroker_drift_unrepaired",
            "Drift the sweep's last pass found and could not repair (or only reports), by kind.",
            ["kind"],
            registry=registry,
        )
        self.audit = AuditVerdict()
        registry.register(self.audit)

    def ran(self, chore: str, *, succeeded: bool) -> None:
        self.runs.labels(chore, "success" if succeeded else "failure").inc()
        if succeeded:
            self.last_success.labels(chore).set_to_current_time()

    def found(self, kind: str, *, repaired: bool) -> None:
        self.drift.labels(kind, str(repaired).lower()).inc()

    def left_unrepaired(self, by_kind: Mapping[str, int]) -> None:
        """A drift pass ended with this many differences of each kind still there."""
        for kind, count in by_kind.items():
            self.unrepaired.labels(kind).set(count)

    def verified(self, report: ChainReport) -> None:
        self.audit.report = report


class AuditVerdict(Collector):
    """The last verification of the audit chain: accessbroker_audit_chain_intact (1, or 0 when
    broken) and accessbroker_audit_chain_verified_events; absent until the first one ends, so
    that a broker still walking a long trail does not look broken."""

    def __init__(self) -> None:
        self.report: ChainReport | None = None

    def collect(self) -> Iterator[Metric]:
        report = self.report
        if report is None:
            return
        yield GaugeMetricFamily(
            "accessbroker_audit_chain_intact",
            "Whether the audit trail's hash chain was intact when last verified (1) or not (0).",
            value=1 if report.broken is None else 0,
        )
        yield GaugeMetricFamily(
            "accessbroker_audit_chain_verified_events",
            "Events the last verification of the audit trail found intact.",
            value=report.intact_events,
        )


class NotificationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "accessbroker_notification_deliveries",
            "Notifications sent to each destination, by outcome (delivered, failed).",
            ["destination", "outcome"],
            registry=registry,
        )
        self.pending = Gauge(
            "accessbroker_notifications_pending",
            "Notified events a destination has not taken yet (after its last pass).",
            ["destination"],
            registry=registry,
        )
        self.last_success = Gauge(
            "accessbroker_notification_last_success_timestamp_seconds",
            "When a destination last took a delivery (Unix time).",
            ["destination"],
            registry=registry,
        )

    def passed(self, report: DeliveryReport) -> None:
        destination = report.state.destination
        if report.delivered:
            self.deliveries.labels(destination, "delivered").inc(report.delivered)
            self.last_success.labels(destination).set_to_current_time()
        if report.state.failures:
            self.deliveries.labels(destination, "failed").inc()
        self.pending.labels(destination).set(report.pending)


@dataclass(frozen=True)
class Kept:
    """The metrics kept as things happen: the server's, the sweep's, the notifier's."""

    grpc: ServerMetrics
    sweeps: SweepMetrics
    notifications: NotificationMetrics


@dataclass(frozen=True)
class Metrics:
    """What the broker counts in, and the endpoint that serves it with the broker's own."""

    kept: Kept
    endpoint: MetricsServer


def every_metric(readings: Readings) -> tuple[CollectorRegistry, Kept]:
    """A registry of all the broker's metrics, with those kept as they happen."""
    registry = CollectorRegistry()
    registry.register(BrokerCollector(readings))
    for collector in readings.collectors():
        registry.register(collector)
    kept = Kept(ServerMetrics(registry), SweepMetrics(registry), NotificationMetrics(registry))
    return registry, kept


def start_metrics(listen: str, readings: Readings) -> Metrics | None:
    """The metrics, served on `listen` (host:port; port 0 picks a free one); None when
    `listen` is "off". ConfigurationError when the address cannot be served."""
    if listen == OFF:
        return None
    registry, kept = every_metric(readings)
    host, _, port = listen.rpartition(":")
    try:
        server, thread = start_http_server(int(port), addr=host.strip("[]"), registry=registry)
    except OSError as error:
        message = f"BROKER_METRICS_LISTEN: cannot serve on {listen}: {error}"
        raise ConfigurationError(message) from error
    url = f"http://{host}:{server.server_address[1]}/metrics"
    return Metrics(kept, MetricsServer(url, server, thread))


def _grants(counts: Mapping[GrantState, StateCount], now: datetime) -> Iterator[Metric]:
    grants = GaugeMetricFamily(
        "accessbroker_grants", "Grants the broker holds, by state.", labels=["state"]
    )
    oldest = GaugeMetricFamily(
        "accessbroker_oldest_grant_age_seconds",
        "How long the grant longest in each settling state (pending, revoking) has been there; "
        "0 when none is.",
        labels=["state"],
    )
    for state in GrantState:  # every state, so a series drops to 0 rather than vanishing
        count = counts.get(state)
        grants.add_metric([state.value], count.count if count else 0)
        if state.is_settling:
            age = (now - count.oldest_since).total_seconds() if count else 0.0
            oldest.add_metric([state.value], max(age, 0.0))
    yield grants
    yield oldest


def _build_info() -> Metric:
    info = InfoMetricFamily("accessbroker_build", "The broker's version.")
    info.add_metric([], {"version": release()})
    return info
