"""`access-broker serve --sandbox` as a newcomer runs it, and the server on PostgreSQL."""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_role_exists, grant


def _banner(process: subprocess.Popen[str]) -> str:
    """The sandbox's start-up text, up to its last line."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Stop with Ctrl-C"):
            return "".join(lines)
    raise AssertionError("the sandbox ended before it was ready:\n" + "".join(lines))


@pytest.fixture
def sandbox_process() -> Iterator[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "AWS_"))}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("access-broker")), "serve", "--sandbox"],
        env={**env, "BROKER_LISTEN": "127.0.0.1:0", "BROKER_METRICS_LISTEN": "127.0.0.1:0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_sandbox_serves_the_seeded_instance_and_says_how(
    sandbox_process: subprocess.Popen[str],
) -> None:
    banner = _banner(sandbox_process)
    address = re.search(r"serving on (\S+)", banner)
    instance = re.search(r"running instance (i-[0-9a-f]+)", banner)
    assert address and instance, banner
    assert "grpcurl -plaintext" in banner

    with grpc.insecure_channel(address.group(1)) as channel:
        stub = broker_pb2_grpc.AccessBrokerStub(channel)
        granted = grant(stub, instance.group(1), "sandbox-data", pb.ACCESS_UPLOAD, "x/").grant

    assert granted.state == pb.GRANT_STATE_ACTIVE
    sandbox_process.send_signal(signal.SIGTERM)
    assert sandbox_process.wait(timeout=30) == 0


def test_broker_on_postgresql_grants_revokes_and_keeps_state(
    emulator: Emulator, postgres_url: str, buckets: tuple[str, str]
) -> None:
    instance_id = emulator.run_instance()
    data = buckets[0]
    inside, outside = f"pg/{instance_id}", f"elsewhere/{instance_id}"
    for key in (inside, outside):  # objects that exist: an allowed read is ALLOWED, not NoSuchKey
        emulator.client("s3").put_object(Bucket=data, Key=key, Body=b"x")

    def reads() -> tuple[str, str]:
        """What the instance may read, inside the granted prefix and outside it."""
        as_instance = emulator.try_as_instance
        granted_prefix = as_instance(instance_id, "GetObject", data, inside)
        beyond_it = as_instance(instance_id, "GetObject", data, outside)
        return granted_prefix, beyond_it

    process = BrokerProcess(emulator, postgres_url)
    process.start()
    try:
        granted = grant(process.stub, instance_id, data, pb.ACCESS_READ, "pg/").grant
        reads_granted = reads()
        assert process.stop() == 0
        process.start()
        kept = process.stub.GetGrant(pb.GetGrantRequest(grant_id=granted.grant_id))
        # The restarted broker, reading its grant back from PostgreSQL, leaves the access as is.
        reads_kept = reads()
        revoked = process.stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=granted.grant_id))
    finally:
        assert process.stop() == 0

    assert granted.state == kept.state == pb.GRANT_STATE_ACTIVE
    assert reads_granted == reads_kept == (ALLOWED, "AccessDenied")
    assert revoked.grant.state == pb.GRANT_STATE_REVOKED
    assert reads() == (NO_CREDENTIALS, NO_CREDENTIALS)
    assert not aws_role_exists(emulator, instance_id)
