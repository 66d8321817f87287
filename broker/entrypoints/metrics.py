"""`/metrics` in the Prometheus text format (BROKER_METRICS_LISTEN), and the broker's own
metrics that are read when scraped rather than kept: the grants by state, from the database
(one grouped count), and the build.
"""

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from broker.domain.access import GrantState
from broker.domain.errors import BrokerError
from broker.entrypoints.grpc.metrics import ServerMetrics
from broker.settings import ConfigurationError

log = logging.getLogger(__name__)

OFF = "off"


class BrokerCollector(Collector):
    """accessbroker_grants{state} and accessbroker_build_info, computed at each scrape."""

    def __init__(self, grant_counts: Callable[[], Mapping[GrantState, int]]) -> None:
        self._grant_counts = grant_counts

    def collect(self) -> Iterator[Metric]:
        yield _build_info()
        grants = GaugeMetricFamily(
            "accessbroker_grants", "Grants the broker holds, by state.", labels=["state"]
        )
        try:
            counts = self._grant_counts()
        except BrokerError as error:  # the database is away: the scrape still answers
            log.warning("grants not counted for /metrics: %s", error)
            return
        for state in GrantState:  # every state, so a series drops to 0 rather than vanishing
            grants.add_metric([state.value], counts.get(state, 0))
        yield grants


@dataclass(frozen=True)
class MetricsServer:
    url: str
    _server: WSGIServer
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass(frozen=True)
class Metrics:
    """What the server counts its calls in, and the endpoint that serves them with the
    broker's own."""

    grpc: ServerMetrics
    endpoint: MetricsServer


def start_metrics(
    listen: str, grant_counts: Callable[[], Mapping[GrantState, int]]
) -> Metrics | None:
    """The metrics, served on `listen` (host:port; port 0 picks a free one); None when
    `listen` is "off". ConfigurationError when the address cannot be served."""
    if listen == OFF:
        return None
    registry = CollectorRegistry()
    registry.register(BrokerCollector(grant_counts))
    grpc_metrics = ServerMetrics(registry)
    host, _, port = listen.rpartition(":")
    try:
        server, thread = start_http_server(int(port), addr=host.strip("[]"), registry=registry)
    except OSError as error:
        message = f"BROKER_METRICS_LISTEN: cannot serve on {listen}: {error}"
        raise ConfigurationError(message) from error
    url = f"http://{host}:{server.server_address[1]}/metrics"
    return Metrics(grpc_metrics, MetricsServer(url, server, thread))


def _build_info() -> Metric:
    info = InfoMetricFamily("accessbroker_build", "The broker's version.")
    try:
        release = version("accessbroker")
    except PackageNotFoundError:
        release = "unknown"
    info.add_metric([], {"version": release})
    return info
