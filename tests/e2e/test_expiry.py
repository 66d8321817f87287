"""A grant with a ttl of seconds ends on time: the sweep withdraws it, as the instance sees it."""

import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from accessbroker.v1 import broker_pb2 as pb
from broker.domain.audit import SYSTEM_ACTOR
from broker.sandbox import Emulator
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_associations, aws_role_exists, grant
from tests.rpc import refusal

TTL_SECONDS = 4


@pytest.fixture(scope="module")
def sweeping(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerProcess]:
    database = tmp_path_factory.mktemp("expiry") / "broker.db"
    process = BrokerProcess(
        emulator, f"sqlite:///{database}", BROKER_SWEEP_INTERVAL_SECONDS="1", BROKER_MAX_TTL="1h"
    )
    process.start()
    yield process
    process.stop()


def wait_for_state(broker: BrokerProcess, grant_id: str, state: int, timeout: float) -> pb.Grant:
    deadline = time.monotonic() + timeout
    while True:
        found = broker.stub.GetGrant(pb.GetGrantRequest(grant_id=grant_id), timeout=10)
        if found.state == state or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_an_expired_grant_loses_its_access_and_is_audited_by_the_system(
    sweeping: BrokerProcess, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    bucket = buckets[0]
    granted = grant(
        sweeping.stub, instance_id, bucket, prefix="out/", ttl=Duration(seconds=TTL_SECONDS)
    ).grant
    assert granted.state == pb.GRANT_STATE_ACTIVE
    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "out/a") == "allowed"

    ended = wait_for_state(sweeping, granted.grant_id, pb.GRANT_STATE_EXPIRED, TTL_SECONDS + 20)

    assert ended.state == pb.GRANT_STATE_EXPIRED
    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "out/b") == "no credentials"
    assert aws_associations(emulator, instance_id) == []
    assert not aws_role_exists(emulator, instance_id)
    events = sweeping.stub.ListAuditEvents(
        pb.ListAuditEventsRequest(grant_id=granted.grant_id), timeout=10
    ).events
    expiries = [e for e in events if e.action == "grant.expired"]
    assert [e.actor for e in expiries] == [SYSTEM_ACTOR]


def test_a_ttl_over_the_servers_maximum_is_refused_naming_it(
    sweeping: BrokerProcess, instance_id: str, buckets: tuple[str, str]
) -> None:
    request = pb.GrantAccessRequest(
        instance_id=instance_id,
        bucket=buckets[0],
        access=pb.ACCESS_READ,
        ttl=Duration(seconds=3601),
    )
    refused = refusal(lambda: sweeping.stub.GrantAccess(request, timeout=30))

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violations == {"ttl": "must be at most 1h, the server's maximum"}


def test_extend_keeps_the_access_past_the_first_expiry(
    sweeping: BrokerProcess, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    bucket = buckets[1]
    granted = grant(sweeping.stub, instance_id, bucket, ttl=Duration(seconds=TTL_SECONDS)).grant

    extended = sweeping.stub.ExtendGrant(
        pb.ExtendGrantRequest(grant_id=granted.grant_id, ttl=Duration(seconds=600)), timeout=10
    )
    time.sleep(TTL_SECONDS + 2)  # past the first expiry, with sweeps in between

    assert extended.expires_at.ToSeconds() > granted.expires_at.ToSeconds()
    current = sweeping.stub.GetGrant(pb.GetGrantRequest(grant_id=granted.grant_id), timeout=10)
    assert current.state == pb.GRANT_STATE_ACTIVE
    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "k") == "allowed"
