"""The gRPC server: the broker API, standard health checking and server reflection."""

import logging
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from accessbroker.v1 import broker_pb2, broker_pb2_grpc
from broker.entrypoints.grpc.errors import ErrorInterceptor
from broker.entrypoints.grpc.servicer import AccessBrokerServicer
from broker.service.dependencies import Dependencies

log = logging.getLogger(__name__)

SERVICE_NAME = broker_pb2.DESCRIPTOR.services_by_name["AccessBroker"].full_name
# Requests are small; anything near this is not a real request.
MAX_MESSAGE_BYTES = 1024 * 1024
HEALTH_PROBE_SECONDS = 5.0


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: "HealthMonitor"
    stopping: threading.Event

    def stop(self, grace: float) -> None:
        """Stops taking calls, lets calls in flight finish within `grace` seconds."""
        self.stopping.set()
        self.health.stop()
        self.server.stop(grace).wait()


class HealthMonitor:
    """Reports SERVING while the database answers, NOT_SERVING while it does not."""

    def __init__(self, servicer: health.HealthServicer, probe: Callable[[], bool]) -> None:
        self._servicer, self._probe = servicer, probe
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
        for name in ("", SERVICE_NAME):
            self._servicer.set(name, status)

    def stop(self) -> None:
        self._stopped.set()
        for name in ("", SERVICE_NAME):
            self._servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    def _run(self) -> None:
        while not self._stopped.wait(HEALTH_PROBE_SECONDS):
            self.check()


def start_server(
    deps: Dependencies, listen: str, database_reachable: Callable[[], bool], workers: int = 16
) -> RunningServer:
    """Starts serving on `listen` (port 0 picks a free port) and returns at once."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        interceptors=[ErrorInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", 16 * MAX_MESSAGE_BYTES),
        ],
    )
    stopping = threading.Event()
    broker_pb2_grpc.add_AccessBrokerServicer_to_server(AccessBrokerServicer(deps, stopping), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    monitor = HealthMonitor(health_servicer, database_reachable)
    server.start()
    monitor.start()
    log.info("accessbroker listening on port %d", port)
    return RunningServer(server, port, monitor, stopping)
