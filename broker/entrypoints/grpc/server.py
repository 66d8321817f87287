"""The gRPC server: the broker API, standard health checking and server reflection."""

import logging
import queue
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import Tracer

from accessbroker.v1 import broker_pb2, broker_pb2_grpc
from broker.entrypoints.grpc.access_log import AccessLogInterceptor
from broker.entrypoints.grpc.auth import AuthInterceptor
from broker.entrypoints.grpc.errors import ErrorInterceptor
from broker.entrypoints.grpc.interceptors import ServerInterceptorBase
from broker.entrypoints.grpc.metrics import MetricsInterceptor, ServerMetrics
from broker.entrypoints.grpc.security import PLAINTEXT_ANONYMOUS, ServerSecurity
from broker.entrypoints.grpc.servicer import AccessBrokerServicer
from broker.entrypoints.grpc.tracing import TracingInterceptor
from broker.service.messagebus import MessageBus

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

SERVICE_NAME = broker_pb2.DESCRIPTOR.services_by_name["AccessBroker"].full_name
# Answered without credentials: load balancers and grpcurl need them before anything else.
OPEN_SERVICES = frozenset({health.SERVICE_NAME, reflection.SERVICE_NAME})
# Requests are small; anything near this is not a real request.
MAX_MESSAGE_BYTES = 1024 * 1024
# How often health asks the database; NOT_SERVING shows this soon after losing it, at most.
HEALTH_PROBE_SECONDS = 2.0


# Probes are few and quick.
HEALTH_WORKERS = 2


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: "HealthMonitor"
    stopping: threading.Event
    workers: "DaemonThreadPool"
    # The plaintext port serving only grpc.health.v1, and its server (None: none).
    health_port: int = 0
    health_server: grpc.Server | None = None

    def stop(self, grace: float) -> None:
        """Stops taking calls, lets calls in flight finish within `grace` seconds."""
        self.stopping.set()
        self.health.stop()
        self.server.stop(grace).wait()
        if self.health_server is not None:
            self.health_server.stop(0).wait()
        self.workers.shutdown(wait=False)


class DaemonThreadPool(futures.Executor):
    """The server's workers, on daemon threads.

    ThreadPoolExecutor's threads are joined when the interpreter exits, so a call still
    running when the shutdown grace ran out (an AWS call waiting out propagation, say) would
    hold the process up for as long as it takes. Here the process exits after the grace; what
    such a call left undone was recorded first (a PENDING or REVOKING grant), and the sweep
    finishes it when the broker starts again.
    """

    def __init__(self, workers: int, name: str) -> None:
        self._work: queue.SimpleQueue[tuple[futures.Future[Any], Callable[[], Any]] | None]
        self._work = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> futures.Future[T]:
        future: futures.Future[T] = futures.Future()
        self._work.put((future, lambda: fn(*args, **kwargs)))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Workers end once the work queued so far is done; `cancel_futures` is not supported."""
        for _ in self._threads:
            self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as error:
                future.set_exception(error)


class HealthMonitor:
    """Reports SERVING while the database answers, NOT_SERVING while it does not."""

    def __init__(
        self,
        servicer: health.HealthServicer,
        probe: Callable[[], bool],
        interval: float = HEALTH_PROBE_SECONDS,
    ) -> None:
        self._servicer, self._probe, self._interval = servicer, probe, interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)

    def start(self) -> None:
        self.check()
        self._thread.start()

    def check(self) -> None:
        serving = self._probe()
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        if self._stopped.is_set():
            return  # a probe that was under way when the server began stopping
        for name in ("", SERVICE_NAME):
            self._servicer.set(name, status)

    def stop(self) -> None:
        self._stopped.set()
        for name in ("", SERVICE_NAME):
            self._servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.check()


def start_server(
    bus: MessageBus,
    listen: str,
    database_reachable: Callable[[], bool],
    workers: int = 24,
    health_probe_seconds: float = HEALTH_PROBE_SECONDS,
    *,
    security: ServerSecurity = PLAINTEXT_ANONYMOUS,
    metrics: ServerMetrics | None = None,
    tracer: Tracer | None = None,
    health_listen: str = "",
) -> RunningServer:
    """Starts serving on `listen` (port 0 picks a free port) and returns at once; counts its
    calls in `metrics` and traces them with `tracer`, each if given; serves the health service
    alone, in plaintext, on `health_listen` too, if given (probes cannot present a client
    certificate)."""
    pool = DaemonThreadPool(workers, name="rpc")
    # Authentication before the rest: a caller without credentials learns nothing, not even
    # whether its request would have been valid. Counting and tracing before it: refusals are
    # calls too. The access log first of all: its request id (and the trace's id) is in every
    # line written for the call.
    interceptors: list[ServerInterceptorBase] = [
        AccessLogInterceptor(),
        *([TracingInterceptor(tracer, OPEN_SERVICES)] if tracer is not None else []),
        *([MetricsInterceptor(metrics)] if metrics is not None else []),
        AuthInterceptor(security.authenticator, OPEN_SERVICES),
        ErrorInterceptor(),
    ]
    server = grpc.server(
        pool,  # type: ignore[arg-type]
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", 16 * MAX_MESSAGE_BYTES),
        ],
    )
    stopping = threading.Event()
    broker_pb2_grpc.add_AccessBrokerServicer_to_server(AccessBrokerServicer(bus, stopping), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = (
        server.add_insecure_port(listen)
        if security.credentials is None
        else server.add_secure_port(listen, security.credentials)
    )
    if port == 0:
        pool.shutdown(wait=False)
        raise OSError(f"cannot listen on {listen}")
    health_server, health_port = (
        _health_only(health_servicer, health_listen) if health_listen else (None, 0)
    )
    monitor = HealthMonitor(health_servicer, database_reachable, health_probe_seconds)
    server.start()
    monitor.start()
    log.info(
        "accessbroker listening on port %d (%s)",
        port,
        "TLS" if security.credentials else "plaintext",
    )
    return RunningServer(server, port, monitor, stopping, pool, health_port, health_server)


def _health_only(servicer: health.HealthServicer, listen: str) -> tuple[grpc.Server, int]:
    """A started plaintext server of the health service alone, sharing the API's statuses."""
    server = grpc.server(DaemonThreadPool(HEALTH_WORKERS, name="health"))  # type: ignore[arg-type]
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen} (BROKER_HEALTH_LISTEN)")
    server.start()
    return server, port
