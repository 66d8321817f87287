"""The broker behind a proxy that throttles, fails, drops and delays AWS calls, seeded.

Whatever the faults, once they stop and the broker has settled, AWS holds exactly what the
database's live grants need, nothing is left over, and the audit trail accounts for it.
"""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest

from accessbroker.v1 import broker_pb2 as pb
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED
from tests.e2e.broker_process import BrokerProcess
from tests.faults import FaultProxy, Faults, checks
from tests.faults.workload import run_batch, wait_until_settled

SEED = 20240611
# About one request in five fails; botocore's five attempts then give up on a call about once
# in 3,000, and the caller's retry (same idempotency key) or the sweep finishes it.
MIXED = Faults(throttle=0.07, server_error=0.05, drop_request=0.04, drop_response=0.04)


@dataclass
class Setup:
    proxy: FaultProxy
    broker: BrokerProcess
    role_path: str


def _broker_behind(
    proxy: FaultProxy, emulator: Emulator, database: Path, kind: str, propagation_timeout: str
) -> Iterator[Setup]:
    """A broker of the test's own, sweeping every second, whose AWS calls all go by the proxy."""
    # A path of its own: the leak check then sees every role this broker could have left.
    role_path = f"/accessbroker/{kind}-{uuid.uuid4().hex[:8]}/"
    broker = BrokerProcess(
        emulator,
        f"sqlite:///{database}",
        BROKER_AWS_ENDPOINT_URL=proxy.url,
        BROKER_SWEEP_INTERVAL_SECONDS="1",
        BROKER_PROPAGATION_TIMEOUT=propagation_timeout,
        BROKER_ROLE_PATH=role_path,
    )
    broker.start()
    try:
        yield Setup(proxy, broker, role_path)
    finally:
        broker.stop()


@pytest.fixture
def faulty(emulator: Emulator, tmp_path: Path) -> Iterator[Setup]:
    """A broker behind a fault proxy (forwarding everything until told)."""
    with FaultProxy(emulator.endpoint_url, seed=SEED) as proxy:
        yield from _broker_behind(proxy, emulator, tmp_path / "broker.db", "faults", "4")


def test_a_batch_under_faults_ends_exactly_as_the_grants_say(
    faulty: Setup, emulator: Emulator, buckets: tuple[str, str]
) -> None:
    instances = [emulator.run_instance() for _ in range(4)]
    faulty.proxy.set_rules(
        {"*": MIXED, "AssociateIamInstanceProfile": replace(MIXED, propagation_seconds=1.0)}
    )
    tally = run_batch(faulty.broker.stub, instances, buckets, operations_per_instance=6, seed=SEED)
    faulty.proxy.set_rules({})
    stub = faulty.broker.stub
    grants = wait_until_settled(stub, instances, timeout=30)

    faults = faulty.proxy.faults
    assert {"throttle", "server_error", "drop_request", "drop_response", "propagation"} <= set(
        faults
    ), f"the batch met too few kinds of faults to prove anything: {faults}"
    assert tally.operations >= 4 * 6
    assert [g.grant_id for g in grants if g.state == pb.GRANT_STATE_FAILED] == []
    by_instance = {i: [g for g in grants if g.instance_id == i] for i in instances}
    assert checks.live_grants(by_instance[instances[0]]) == []  # its script revoked them all
    assert [p for i in instances for p in checks.drift(emulator, i, by_instance[i])] == []
    live = [i for i in instances if checks.live_grants(by_instance[i])]
    assert checks.leaks(emulator, faulty.role_path, live) == []
    exchanges = faulty.proxy.exchanges
    for instance_id in instances:
        events = checks.audit_events(stub, instance_id)
        assert checks.grant_trail_gaps(by_instance[instance_id], events) == []
        assert checks.aws_trail_gaps(emulator, instance_id, events, exchanges) == []


@pytest.fixture(scope="module")
def propagating(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A broker that waits up to 3 s for IAM to propagate, sweeping every second."""
    rules = {"AssociateIamInstanceProfile": Faults(propagation_seconds=1.5)}
    with FaultProxy(emulator.endpoint_url, seed=SEED, rules=rules) as proxy:
        database = tmp_path_factory.mktemp("propagation") / "broker.db"
        yield from _broker_behind(proxy, emulator, database, "propagation", "3")


def test_a_grant_waits_out_ec2_not_yet_seeing_the_new_profile(
    propagating: Setup, emulator: Emulator, buckets: tuple[str, str]
) -> None:
    instance_id = emulator.run_instance()
    refused_before = propagating.proxy.faults["propagation"]
    started = time.monotonic()
    response = propagating.broker.stub.GrantAccess(
        pb.GrantAccessRequest(instance_id=instance_id, bucket=buckets[0], access=pb.ACCESS_UPLOAD),
        timeout=30,
    )

    assert response.grant.state == pb.GRANT_STATE_ACTIVE
    assert time.monotonic() - started >= 1.5
    assert propagating.proxy.faults["propagation"] > refused_before
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "x") == ALLOWED


def test_propagation_beyond_the_budget_is_unavailable_then_finished_by_the_sweep(
    propagating: Setup, emulator: Emulator, buckets: tuple[str, str]
) -> None:
    instance_id = emulator.run_instance()
    stub = propagating.broker.stub
    propagating.proxy.set_rules({"AssociateIamInstanceProfile": Faults(propagation_seconds=5)})
    try:
        with pytest.raises(grpc.RpcError) as refused:
            stub.GrantAccess(
                pb.GrantAccessRequest(
                    instance_id=instance_id, bucket=buckets[0], access=pb.ACCESS_READ
                ),
                timeout=30,
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        (pending,) = stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id)).grants
        assert pending.state == pb.GRANT_STATE_PENDING
        assert "propagate" in pending.failure_reason

        (finished,) = wait_until_settled(stub, [instance_id], timeout=20)
    finally:
        propagating.proxy.set_rules(
            {"AssociateIamInstanceProfile": Faults(propagation_seconds=1.5)}
        )
    assert finished.state == pb.GRANT_STATE_ACTIVE
    # Any role would end "no credentials"; only the read policy the sweep finished gives exactly
    # this: the granted bucket readable, nothing written, the other bucket closed.
    data, other = buckets
    key = f"read-{instance_id}"
    for bucket in buckets:  # the object exists, so an allowed read is ALLOWED, not NoSuchKey
        emulator.client("s3").put_object(Bucket=bucket, Key=key, Body=b"x")
    assert emulator.try_as_instance(instance_id, "GetObject", data, key) == ALLOWED
    assert emulator.try_as_instance(instance_id, "PutObject", data, key) == "AccessDenied"
    assert emulator.try_as_instance(instance_id, "GetObject", other, key) == "AccessDenied"
