"""The server as a process: health, reflection, a restart that keeps state, and the demo."""

import signal
import subprocess
import sys
from pathlib import Path

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from accessbroker.v1 import broker_pb2 as pb
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_role_exists, grant


def test_health_and_reflection(broker: BrokerProcess) -> None:
    health = health_pb2_grpc.HealthStub(broker.channel)
    reflection = reflection_pb2_grpc.ServerReflectionStub(broker.channel)

    status = health.Check(health_pb2.HealthCheckRequest(service="accessbroker.v1.AccessBroker"))
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    services = {s.name for reply in replies for s in reply.list_services_response.service}

    assert status.status == health_pb2.HealthCheckResponse.SERVING
    assert {"accessbroker.v1.AccessBroker", "grpc.health.v1.Health"} <= services


def test_restart_keeps_state(emulator: Emulator, tmp_path: Path) -> None:
    data = f"restart-{tmp_path.name.replace('_', '-').lower()}"[:63]
    emulator.create_bucket(data)
    instance_id = emulator.run_instance()
    process = BrokerProcess(emulator, f"sqlite:///{tmp_path / 'broker.db'}")
    process.start()
    granted = grant(process.stub, instance_id, data, pb.ACCESS_UPLOAD, "x/").grant
    assert process.stop(signal.SIGTERM) == 0

    process.start()
    try:
        kept = process.stub.GetGrant(pb.GetGrantRequest(grant_id=granted.grant_id))
        assert kept == granted
        assert emulator.try_as_instance(instance_id, "PutObject", data, "x/1") == ALLOWED
        process.stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=granted.grant_id))
        assert emulator.try_as_instance(instance_id, "PutObject", data, "x/2") == NO_CREDENTIALS
        assert not aws_role_exists(emulator, instance_id)
    finally:
        assert process.stop(signal.SIGTERM) == 0


def test_demo_tells_the_whole_story_and_succeeds() -> None:
    demo = subprocess.run(
        [str(Path(sys.executable).with_name("access-broker")), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Every step behaved as expected." in demo.stdout
    assert "UNEXPECTED" not in demo.stdout
