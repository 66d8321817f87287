"""Concurrent callers on one instance: no lost statement, no second role."""

from concurrent.futures import ThreadPoolExecutor

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED
from tests.e2e.calls import aws_policy, aws_profile_names, aws_role_names, grant, role_name


def test_concurrent_grants_for_one_instance_all_land_in_one_role(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    prefixes = [f"worker-{n}/" for n in range(8)]

    with ThreadPoolExecutor(max_workers=len(prefixes)) as pool:
        responses = list(
            pool.map(lambda p: grant(stub, instance_id, buckets[0], pb.ACCESS_UPLOAD, p), prefixes)
        )

    assert {r.grant.state for r in responses} == {pb.GRANT_STATE_ACTIVE}
    assert len({r.grant.role_arn for r in responses}) == 1
    assert aws_role_names(emulator).count(role_name(instance_id)) == 1
    assert aws_profile_names(emulator, instance_id) == [role_name(instance_id)]
    resources = {r for s in aws_policy(emulator, instance_id)["Statement"] for r in s["Resource"]}
    assert {f"arn:aws:s3:::{buckets[0]}/{p}*" for p in prefixes} <= resources
    for prefix in prefixes:
        assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], prefix + "f") == (
            ALLOWED
        )
