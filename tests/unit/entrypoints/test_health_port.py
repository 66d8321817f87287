"""BROKER_HEALTH_LISTEN: the health service alone, in plaintext, on a port of its own, sharing
the API's statuses, so probes work when the API asks for client certificates."""

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.entrypoints.grpc.server import start_server
from tests.unit.service.fakes import World
from tests.waiting import wait_until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_the_health_port_answers_health_alone_with_the_apis_status(w: World) -> None:
    database_up = [True]
    running = start_server(
        w.bus,
        "127.0.0.1:0",
        lambda: database_up[0],
        2,
        health_probe_seconds=0.05,
        health_listen="127.0.0.1:0",
    )
    try:
        assert running.health_port not in (0, running.port)
        with grpc.insecure_channel(f"127.0.0.1:{running.health_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def status() -> int:
                check = health_pb2.HealthCheckRequest(service="")
                return int(health.Check(check, timeout=10, wait_for_ready=True).status)

            assert status() == SERVING
            database_up[0] = False
            wait_until(lambda: status() == NOT_SERVING, what="the health port reporting the outage")
            with pytest.raises(grpc.RpcError) as refused:
                broker_pb2_grpc.AccessBrokerStub(channel).GetGrant(pb.GetGrantRequest(), timeout=10)
            assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        running.stop(grace=0)
