"""kill -9 at every AWS step of a grant and of a revoke; the restarted broker finishes the work.

The proxy parks the chosen call, so the kill lands while the broker waits on it; the call is
then let through to AWS (the change is made, but nobody hears of it: the hardest case). The
restarted broker runs only its start-up sweep (the interval is an hour), so what finishes the
work is the sweep, not a retried call.
"""

import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.sandbox import Emulator
from broker.sandbox.emulator import SANDBOX_AMI_ID
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.e2e.broker_process import BrokerProcess
from tests.faults import Exchange, FaultProxy, checks
from tests.faults.workload import grants_of, wait_until_settled

GRANT_STEPS = [
    "CreateRole",
    "PutRolePolicy",
    "CreateInstanceProfile",
    "AddRoleToInstanceProfile",
    "AssociateIamInstanceProfile",
]
REVOKE_STEPS = [
    "DisassociateIamInstanceProfile",
    "RemoveRoleFromInstanceProfile",
    "DeleteInstanceProfile",
    "DeleteRolePolicy",
    "DeleteRole",
]
KEY = "crash-test-key"


@pytest.fixture(scope="module")
def proxy(emulator: Emulator) -> Iterator[FaultProxy]:
    with FaultProxy(emulator.endpoint_url, seed=0) as running:
        yield running


@pytest.fixture(scope="module")
def instances(emulator: Emulator) -> Iterator[str]:
    """Fresh running instances, made in one call (faster): each test takes the next."""
    reservation = emulator.client("ec2").run_instances(
        ImageId=SANDBOX_AMI_ID,
        InstanceType="t3.micro",
        MinCount=len(GRANT_STEPS + REVOKE_STEPS) + 1,
        MaxCount=len(GRANT_STEPS + REVOKE_STEPS) + 1,
    )
    return iter([i["InstanceId"] for i in reservation["Instances"]])


@dataclass
class Crash:
    """One broker's database, killed and restarted; a role path of its own for the leak check."""

    emulator: Emulator
    proxy: FaultProxy
    database_url: str
    role_path: str
    instance_id: str
    bucket: str
    broker: BrokerProcess | None = None

    def start(self) -> broker_pb2_grpc.AccessBrokerStub:
        self.broker = BrokerProcess(
            self.emulator,
            self.database_url,
            BROKER_AWS_ENDPOINT_URL=self.proxy.url,
            BROKER_SWEEP_INTERVAL_SECONDS="3600",
            BROKER_PROPAGATION_TIMEOUT="5",
            BROKER_ROLE_PATH=self.role_path,
        )
        self.broker.start()
        return self.broker.stub

    def kill_during(
        self, action: str, call: Callable[[broker_pb2_grpc.AccessBrokerStub], object]
    ) -> None:
        """Calls in a thread, kills the broker -9 while `action` is parked, lets it reach AWS."""
        assert self.broker is not None
        stub, failures = self.broker.stub, list[grpc.RpcError]()

        def calling() -> None:
            try:
                call(stub)
            except grpc.RpcError as error:
                failures.append(error)

        self.proxy.hold(action)
        caller = threading.Thread(target=calling)
        caller.start()
        try:
            assert self.proxy.wait_until_held(timeout=20), f"the broker never called {action}"
            assert self.broker.stop(signal.SIGKILL) == -signal.SIGKILL
        finally:
            self.proxy.release(forward=True)
        assert self.proxy.wait_until(lambda seen: _landed(seen, action), timeout=10)
        caller.join(timeout=30)
        # stop() closes the test's channel before the kill, so the call ends CANCELLED.
        assert len(failures) == 1, "the killed call must not have answered"

    def stop(self) -> None:
        if self.broker is not None and self.broker.process is not None:
            self.broker.stop()


def _landed(exchanges: list[Exchange], action: str) -> bool:
    return any(e.parked and e.action == action and e.reached_aws for e in exchanges)


@pytest.fixture
def crash(
    emulator: Emulator,
    proxy: FaultProxy,
    instances: Iterator[str],
    tmp_path: Path,
    buckets: tuple[str, str],
) -> Iterator[Crash]:
    setup = Crash(
        emulator,
        proxy,
        f"sqlite:///{tmp_path / 'broker.db'}",
        f"/accessbroker/crash-{uuid.uuid4().hex[:8]}/",
        next(instances),
        buckets[0],
    )
    try:
        yield setup
    finally:
        setup.stop()


def _grant_request(crash: Crash) -> pb.GrantAccessRequest:
    return pb.GrantAccessRequest(
        instance_id=crash.instance_id,
        bucket=crash.bucket,
        access=pb.ACCESS_UPLOAD,
        prefix="crash/",
        idempotency_key=KEY,
    )


def _check_nothing_left_over(crash: Crash, stub: broker_pb2_grpc.AccessBrokerStub) -> None:
    grants = grants_of(stub, crash.instance_id)
    live = [crash.instance_id] if checks.live_grants(grants) else []
    assert checks.drift(crash.emulator, crash.instance_id, grants) == []
    assert checks.leaks(crash.emulator, crash.role_path, live) == []
    events = checks.audit_events(stub, crash.instance_id)
    assert checks.grant_trail_gaps(grants, events) == []
    # The killed call's change reached AWS unheard; every change heard is in the trail.
    unheard = [replace(e, fault="killed") if e.parked else e for e in crash.proxy.exchanges]
    assert checks.aws_trail_gaps(crash.emulator, crash.instance_id, events, unheard) == []


@pytest.mark.parametrize("action", GRANT_STEPS)
def test_a_grant_killed_at_each_step_is_finished_on_restart(crash: Crash, action: str) -> None:
    crash.start()
    crash.kill_during(action, lambda stub: stub.GrantAccess(_grant_request(crash), timeout=30))

    stub = crash.start()
    (grant,) = wait_until_settled(stub, [crash.instance_id], timeout=20)
    assert grant.state == pb.GRANT_STATE_ACTIVE
    outcome = crash.emulator.try_as_instance(
        crash.instance_id, "PutObject", crash.bucket, "crash/x"
    )
    assert outcome == ALLOWED
    retried = stub.GrantAccess(_grant_request(crash), timeout=30)
    assert (retried.grant.grant_id, retried.grant.state) == (grant.grant_id, pb.GRANT_STATE_ACTIVE)
    _check_nothing_left_over(crash, stub)


@pytest.mark.parametrize("action", REVOKE_STEPS)
def test_a_revoke_killed_at_each_step_is_finished_on_restart(crash: Crash, action: str) -> None:
    stub = crash.start()
    grant = stub.GrantAccess(_grant_request(crash), timeout=30).grant
    revoke = pb.RevokeAccessRequest(grant_id=grant.grant_id, idempotency_key=KEY)
    crash.kill_during(action, lambda stub: stub.RevokeAccess(revoke, timeout=30))

    stub = crash.start()
    (settled,) = wait_until_settled(stub, [crash.instance_id], timeout=20)
    assert settled.state == pb.GRANT_STATE_REVOKED
    outcome = crash.emulator.try_as_instance(
        crash.instance_id, "PutObject", crash.bucket, "crash/x"
    )
    assert outcome == NO_CREDENTIALS
    assert stub.RevokeAccess(revoke, timeout=30).grant.state == pb.GRANT_STATE_REVOKED
    _check_nothing_left_over(crash, stub)


def test_the_trail_records_a_change_a_killed_broker_made(crash: Crash) -> None:
    crash.start()
    crash.kill_during(
        "CreateRole", lambda stub: stub.GrantAccess(_grant_request(crash), timeout=30)
    )
    stub = crash.start()
    wait_until_settled(stub, [crash.instance_id], timeout=20)

    events = checks.audit_events(stub, crash.instance_id)
    unheard = [replace(e, fault="killed") if e.parked else e for e in crash.proxy.exchanges]
    gaps = checks.aws_trail_gaps(
        crash.emulator, crash.instance_id, events, unheard, excuse_unheard=False
    )
    assert gaps == []
