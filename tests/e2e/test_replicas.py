"""Two broker processes on one PostgreSQL database, granting on the same instance at once."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from accessbroker.v1 import broker_pb2 as pb
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_policy, aws_profile_names, aws_role_names, grant, role_name

ROUNDS = 12


@pytest.fixture
def replicas(emulator: Emulator, postgres_url: str) -> Iterator[list[BrokerProcess]]:
    processes = [BrokerProcess(emulator, postgres_url) for _ in range(3)]
    for process in processes:
        process.start()
    yield processes
    for process in processes:
        process.stop()


def test_concurrent_grants_across_replicas_end_in_one_role_holding_them_all(
    replicas: list[BrokerProcess], emulator: Emulator, buckets: tuple[str, str]
) -> None:
    instance_id = emulator.run_instance()
    granted: list[str] = []

    # Rounds of simultaneous grants, one per replica: each round's last writer must not drop
    # a statement another replica's convergence added a moment earlier.
    with ThreadPoolExecutor(max_workers=len(replicas)) as pool:
        for round_number in range(ROUNDS):
            prefixes = [f"round-{round_number}-replica-{n}/" for n in range(len(replicas))]
            responses = list(
                pool.map(
                    lambda pair: grant(pair[0].stub, instance_id, buckets[0], prefix=pair[1]),
                    zip(replicas, prefixes, strict=True),
                )
            )
            granted += prefixes
            assert {r.grant.state for r in responses} == {pb.GRANT_STATE_ACTIVE}
            assert _granted_prefixes(emulator, instance_id, buckets[0]) == set(granted)

    assert aws_role_names(emulator).count(role_name(instance_id)) == 1
    assert aws_profile_names(emulator, instance_id) == [role_name(instance_id)]
    for prefix in granted[-len(replicas) :]:
        outcome = emulator.try_as_instance(instance_id, "PutObject", buckets[0], prefix + "f")
        assert outcome == ALLOWED


def _granted_prefixes(emulator: Emulator, instance_id: str, bucket: str) -> set[str]:
    """The prefixes the instance's policy in AWS lets it write to."""
    resources = {r for s in aws_policy(emulator, instance_id)["Statement"] for r in s["Resource"]}
    start = f"arn:aws:s3:::{bucket}/"
    return {r.removeprefix(start).removesuffix("*") for r in resources if r.startswith(start)}
