"""Prometheus metrics of the gRPC server, under the names of the go-grpc-prometheus convention
(also py-grpc-prometheus's), so existing dashboards and alerts work unchanged:

    grpc_server_started_total       RPCs started, by grpc_type, grpc_service, grpc_method
    grpc_server_handled_total       RPCs completed, by the same and grpc_code
    grpc_server_handling_seconds    a histogram of their duration (of the handler, as seen here)
    grpc_server_msg_received_total  request messages received
    grpc_server_msg_sent_total      response messages sent (a stream's, one by one)

The interceptor is the server's first, so every call is counted, refused ones included, with
the code the caller got.
"""

import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

from broker.entrypoints.grpc.interceptors import Stream, Unary, WrappingInterceptor

LABELS = ("grpc_type", "grpc_service", "grpc_method")
UNARY, SERVER_STREAM = "unary", "server_stream"
# go-grpc-prometheus's default buckets (Prometheus's), in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Behavior = Callable[[Any, grpc.ServicerContext], Any]


class ServerMetrics:
    """The server's metrics, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.started = Counter(
            "grpc_server_started", "RPCs started on the server.", LABELS, registry=registry
        )
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, regardless of success or failure.",
            (*LABELS, "grpc_code"),
            registry=registry,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "Response latency of RPCs handled by the server, in seconds.",
            LABELS,
            buckets=BUCKETS,
            registry=registry,
        )
        self.received = Counter(
            "grpc_server_msg_received",
            "RPC request messages received on the server.",
            LABELS,
            registry=registry,
        )
        self.sent = Counter(
            "grpc_server_msg_sent",
            "RPC response messages sent by the server.",
            LABELS,
            registry=registry,
        )


class MetricsInterceptor(WrappingInterceptor):
    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def unary(self, behavior: Unary, method: str) -> Unary:
        return _Call(self._metrics, _labels(UNARY, method)).unary(behavior)

    def stream(self, behavior: Stream, method: str) -> Stream:
        return _Call(self._metrics, _labels(SERVER_STREAM, method)).stream(behavior)


def _labels(grpc_type: str, method: str) -> tuple[str, str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return grpc_type, service, name


class _Call:
    """Counting for one method: its labels, and wrappers that count around its behavior."""

    def __init__(self, metrics: ServerMetrics, labels: tuple[str, str, str]) -> None:
        self._metrics, self._labels = metrics, labels

    def unary(self, behavior: Behavior) -> Behavior:
        def counted(request: Any, context: grpc.ServicerContext) -> Any:
            started = self._start()
            try:
                response = behavior(request, context)
            finally:
                self._end(context, started)
            self._metrics.sent.labels(*self._labels).inc()
            return response

        return counted

    def stream(self, behavior: Behavior) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def counted(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = self._start()
            try:
                for response in behavior(request, context):
                    self._metrics.sent.labels(*self._labels).inc()
                    yield response
            finally:
                self._end(context, started)

        return counted

    def _start(self) -> float:
        self._metrics.started.labels(*self._labels).inc()
        self._metrics.received.labels(*self._labels).inc()
        return time.perf_counter()

    def _end(self, context: grpc.ServicerContext, started: float) -> None:
        # abort() sets the code, success leaves it unset. (grpc-stubs lacks code(), grpc has it.)
        code = cast(Any, context).code() or grpc.StatusCode.OK
        self._metrics.handled.labels(*self._labels, code.name).inc()
        self._metrics.handling.labels(*self._labels).observe(time.perf_counter() - started)
