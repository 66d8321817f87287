"""A grant with a ttl ends on time: the sweep withdraws it, as the instance sees it.

Each test has one window that must close before a grant's expiry: the grant's own request plus
a check of its access, or plus its extension. On a loaded machine those calls can take seconds,
so the ttl is tens of seconds. The waits after it are on events (a grant reaching EXPIRED), not
sleeps, so a test costs about one ttl and no more, however fast or slow the machine.
"""

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from accessbroker.v1 import broker_pb2 as pb
from broker.domain.audit import SYSTEM_ACTOR
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_associations, aws_role_exists, grant
from tests.rpc import refusal
from tests.waiting import WAIT_SECONDS, wait_for

# The window, a grant request plus one more call, took under a second with both cores kept busy
# by other processes; 20 s is some thirty times that, and waiting it out once per test is
# bearable.
TTL_SECONDS = 20
# The sweep runs every second here; past a grant's expiry the wait is for the sweep to get to it.
EXPIRY_WAIT_SECONDS = TTL_SECONDS + WAIT_SECONDS


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


def current(broker: BrokerProcess, grant_id: str) -> pb.Grant:
    found: pb.Grant = broker.stub.GetGrant(pb.GetGrantRequest(grant_id=grant_id), timeout=10)
    return found


def wait_until_expired(broker: BrokerProcess, granted: pb.Grant) -> pb.Grant:
    """The grant once the sweep has moved it to EXPIRED; it expires TTL_SECONDS at most from
    now, and the sweep then gets to it within its interval."""
    return wait_for(
        lambda: current(broker, granted.grant_id),
        lambda found: found.state == pb.GRANT_STATE_EXPIRED,
        what=f"grant {granted.grant_id} (due {granted.expires_at.ToJsonString()}) reaching EXPIRED",
        timeout=EXPIRY_WAIT_SECONDS,
        interval=0.5,
    )


def test_an_expired_grant_loses_its_access_and_is_audited_by_the_system(
    sweeping: BrokerProcess, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    bucket = buckets[0]
    granted = grant(
        sweeping.stub, instance_id, bucket, prefix="out/", ttl=Duration(seconds=TTL_SECONDS)
    ).grant
    # The window: this check must come before the expiry, TTL_SECONDS after the request.
    assert granted.state == pb.GRANT_STATE_ACTIVE
    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "out/a") == ALLOWED

    wait_until_expired(sweeping, granted)

    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "out/b") == NO_CREDENTIALS
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
    kept_bucket, other_bucket = buckets[1], buckets[0]
    granted = grant(
        sweeping.stub, instance_id, kept_bucket, ttl=Duration(seconds=TTL_SECONDS)
    ).grant
    # The window: the extension must come before the first expiry, TTL_SECONDS after the request.
    extended = sweeping.stub.ExtendGrant(
        pb.ExtendGrantRequest(grant_id=granted.grant_id, ttl=Duration(seconds=600)), timeout=10
    )
    # A witness on the same instance, requested after the first grant with the same ttl, so that
    # it expires after the first grant's original expiry. Whatever convergence expires it runs at
    # or after its expiry: it would find the first grant past its original expiry too, had the
    # extension not taken, and settle both in one transaction. So once the witness is EXPIRED,
    # the first grant is past its first expiry as far as the broker can tell, with no race left.
    witness = grant(
        sweeping.stub,
        instance_id,
        other_bucket,
        prefix="witness/",
        ttl=Duration(seconds=TTL_SECONDS),
    ).grant
    assert witness.expires_at.ToNanoseconds() > granted.expires_at.ToNanoseconds()

    wait_until_expired(sweeping, witness)

    assert extended.expires_at.ToSeconds() > granted.expires_at.ToSeconds()
    assert current(sweeping, granted.grant_id).state == pb.GRANT_STATE_ACTIVE
    assert emulator.try_as_instance(instance_id, "PutObject", kept_bucket, "k") == ALLOWED
    # The sweep rewrote the instance's policy without the witness, and kept the extended grant.
    assert (
        emulator.try_as_instance(instance_id, "PutObject", other_bucket, "witness/k")
        == "AccessDenied"
    )
