"""Losing PostgreSQL: health turns NOT_SERVING, calls get UNAVAILABLE, and the broker recovers."""

import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import make_url

from accessbroker.v1 import broker_pb2 as pb
from broker.sandbox import Emulator
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_role_exists, grant
from tests.rpc import refusal
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_for

# A refused call must come back well before the caller would give up on its own.
REFUSED_WITHIN = 15.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def broker_on_proxy(
    emulator: Emulator, postgres_url: str, postgres_proxy: TcpProxy
) -> Iterator[BrokerProcess]:
    url = make_url(postgres_url).set(host="127.0.0.1", port=postgres_proxy.port)
    process = BrokerProcess(emulator, url.render_as_string(hide_password=False))
    process.start()
    yield process
    if not postgres_proxy.is_up:
        postgres_proxy.restore()
    process.stop()


def _health(process: BrokerProcess) -> int:
    stub = health_pb2_grpc.HealthStub(process.channel)
    status: int = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
    return status


def wait_for_health(process: BrokerProcess, status: int, when: str) -> None:
    """The health probe runs every 2 s, so health follows the database within seconds; the wait
    is the suite's usual generous one, for a machine too loaded to run the probe on time."""
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    wait_for(
        lambda: health_pb2.HealthCheckResponse.ServingStatus.Name(_health(process)),
        lambda seen: seen == name,
        what=f"health turning {name} {when}",
    )


def _timed_code(call: Callable[[], object]) -> tuple[grpc.StatusCode, float]:
    started = time.monotonic()
    code = refusal(call).code
    return code, time.monotonic() - started


def test_losing_the_database_refuses_calls_and_the_broker_recovers_on_its_own(
    broker_on_proxy: BrokerProcess,
    postgres_proxy: TcpProxy,
    emulator: Emulator,
    buckets: tuple[str, str],
    instance_id: str,
) -> None:
    stub = broker_on_proxy.stub
    before = grant(stub, instance_id, buckets[0], prefix="before/").grant
    other_instance = emulator.run_instance()

    postgres_proxy.cut()
    wait_for_health(broker_on_proxy, NOT_SERVING, "after the database went away")
    refused = {
        "GrantAccess": _timed_code(
            lambda: stub.GrantAccess(
                pb.GrantAccessRequest(
                    instance_id=other_instance, bucket=buckets[0], access=pb.ACCESS_READ
                ),
                timeout=60,
            )
        ),
        "GetGrant": _timed_code(
            lambda: stub.GetGrant(pb.GetGrantRequest(grant_id=before.grant_id), timeout=60)
        ),
        "ListGrants": _timed_code(lambda: stub.ListGrants(pb.ListGrantsRequest(), timeout=60)),
        "RevokeAccess": _timed_code(
            lambda: stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=before.grant_id), timeout=60)
        ),
    }
    postgres_proxy.restore()
    wait_for_health(broker_on_proxy, SERVING, "again after the database came back")
    after = grant(stub, other_instance, buckets[0], prefix="after/").grant
    kept = stub.GetGrant(pb.GetGrantRequest(grant_id=before.grant_id), timeout=30)
    other_grants = stub.ListGrants(pb.ListGrantsRequest(instance_id=other_instance), timeout=30)

    for method, (code, seconds) in refused.items():
        assert code == grpc.StatusCode.UNAVAILABLE, method
        assert seconds < REFUSED_WITHIN, method
    assert after.state == pb.GRANT_STATE_ACTIVE
    # The revoke refused while the database was away changed nothing.
    assert kept.state == pb.GRANT_STATE_ACTIVE
    # The refused grant left no row behind: the only grant is the one made afterwards.
    assert [g.grant_id for g in other_grants.grants] == [after.grant_id]
    assert aws_role_exists(emulator, other_instance)
