"""What each request costs in AWS calls, counted at the emulator's boundary, and that economy
never costs the truth: access is checked as the instance has it after each step.

The broker converges from its own record of an instance, reading AWS only where the record
cannot answer; when AWS disagrees with the record, it observes AWS in full and converges again.
"""

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from accessbroker.v1 import broker_pb2 as pb
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import grant, role_name
from tests.faults.proxy import FaultProxy
from tests.waiting import WAIT_SECONDS, wait_for

IDLE = str(24 * 3600)  # the sweeps' intervals: only the requests' own calls are counted


@dataclass(frozen=True)
class Counted:
    broker: BrokerProcess
    proxy: FaultProxy

    def calls_of(self, request: Callable[[], object]) -> Counter[str]:
        """The AWS actions `request` made, by name."""
        before = len(self.proxy.exchanges)
        request()
        return Counter(e.action for e in self.proxy.exchanges[before:])


@pytest.fixture(scope="module")
def counted(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Counted]:
    with FaultProxy(emulator.endpoint_url) as proxy:
        database = tmp_path_factory.mktemp("economy") / "broker.db"
        broker = BrokerProcess(
            emulator,
            f"sqlite:///{database}",
            BROKER_AWS_ENDPOINT_URL=proxy.url,
            BROKER_SWEEP_INTERVAL_SECONDS=IDLE,
            BROKER_DRIFT_SWEEP_INTERVAL_SECONDS=IDLE,
        )
        broker.start()
        # The sweep reads each account's IAM usage at start: only the requests' calls count.
        broker.wait_for_chore("quotas")
        try:
            yield Counted(broker, proxy)
        finally:
            broker.stop()


def _uploads(emulator: Emulator, instance_id: str, bucket: str) -> str:
    return emulator.try_as_instance(instance_id, "PutObject", bucket, f"k-{uuid.uuid4().hex}")


def test_a_first_grant_costs_eight_calls_five_of_them_writes(
    counted: Counted, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    calls = counted.calls_of(lambda: grant(counted.broker.stub, instance_id, buckets[0]))

    assert calls == Counter(
        {
            "DescribeInstances": 1,  # it exists, and holds no profile
            "GetRole": 1,  # no role of someone else's under the broker's name
            "GetInstanceProfile": 1,  # nor a profile
            "CreateRole": 1,
            "PutRolePolicy": 1,
            "CreateInstanceProfile": 1,
            "AddRoleToInstanceProfile": 1,
            "AssociateIamInstanceProfile": 1,
        }
    )
    assert _uploads(emulator, instance_id, buckets[0]) == ALLOWED


def test_a_grant_on_another_bucket_costs_one_read_and_one_write(
    counted: Counted, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    grant(counted.broker.stub, instance_id, buckets[0])

    calls = counted.calls_of(lambda: grant(counted.broker.stub, instance_id, buckets[1]))

    assert calls == Counter({"DescribeInstances": 1, "PutRolePolicy": 1})
    assert _uploads(emulator, instance_id, buckets[0]) == ALLOWED
    assert _uploads(emulator, instance_id, buckets[1]) == ALLOWED


def test_revoking_one_of_two_grants_costs_one_read_and_one_write(
    counted: Counted, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    kept = grant(counted.broker.stub, instance_id, buckets[0]).grant
    revoked = grant(counted.broker.stub, instance_id, buckets[1]).grant
    request = pb.RevokeAccessRequest(grant_id=revoked.grant_id)

    calls = counted.calls_of(lambda: counted.broker.stub.RevokeAccess(request, timeout=60))

    assert calls == Counter({"DescribeIamInstanceProfileAssociations": 1, "PutRolePolicy": 1})
    still = counted.broker.stub.GetGrant(pb.GetGrantRequest(grant_id=kept.grant_id))
    assert still.state == pb.GRANT_STATE_ACTIVE
    assert _uploads(emulator, instance_id, buckets[0]) == ALLOWED
    assert _uploads(emulator, instance_id, buckets[1]) == "AccessDenied"


def test_a_repeated_identical_grant_calls_nothing_and_writes_nothing(
    counted: Counted, instance_id: str, buckets: tuple[str, str]
) -> None:
    first = grant(counted.broker.stub, instance_id, buckets[0]).grant
    audit = pb.ListAuditEventsRequest(instance_id=instance_id)
    events = counted.broker.stub.ListAuditEvents(audit).events

    calls = counted.calls_of(lambda: grant(counted.broker.stub, instance_id, buckets[0]))

    assert calls == Counter()
    assert counted.broker.stub.ListAuditEvents(audit).events == events
    again = counted.broker.stub.GetGrant(pb.GetGrantRequest(grant_id=first.grant_id))
    assert again == first


def test_when_aws_disagrees_with_the_record_the_broker_observes_and_rebuilds(
    counted: Counted, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    grant(counted.broker.stub, instance_id, buckets[0])
    # Behind the broker's back, its role is taken out of the profile and deleted: the record
    # still names it.
    iam, role = emulator.client("iam"), role_name(instance_id)
    iam.remove_role_from_instance_profile(InstanceProfileName=role, RoleName=role)
    iam.delete_role_policy(RoleName=role, PolicyName="accessbroker-grants")
    iam.delete_role(RoleName=role)

    calls = counted.calls_of(lambda: grant(counted.broker.stub, instance_id, buckets[1]))

    # The presumed PutRolePolicy met NoSuchEntity; then a full observation, and the role again.
    assert calls["PutRolePolicy"] == 2
    assert calls["GetRole"] == 1
    assert calls["CreateRole"] == 1
    assert calls["AddRoleToInstanceProfile"] == 1
    assert _uploads(emulator, instance_id, buckets[0]) == ALLOWED
    assert _uploads(emulator, instance_id, buckets[1]) == ALLOWED


def test_twenty_grants_arriving_during_a_convergence_are_carried_by_the_next_one(
    counted: Counted, emulator: Emulator, instance_id: str
) -> None:
    buckets = [f"burst-{n:02d}-{uuid.uuid4().hex[:8]}" for n in range(20)]
    for bucket in buckets:
        emulator.create_bucket(bucket)
    stub = counted.broker.stub

    def burst(pool: ThreadPoolExecutor) -> list[pb.GrantAccessResponse]:
        # The first grant's convergence is held at its first write while the other 19 arrive.
        counted.proxy.hold("CreateRole")
        first = pool.submit(grant, stub, instance_id, buckets[0])
        assert counted.proxy.wait_until_held(timeout=WAIT_SECONDS)
        rest = [pool.submit(grant, stub, instance_id, bucket) for bucket in buckets[1:]]
        wait_for(
            lambda: stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id)).grants,
            lambda grants: len(grants) == len(buckets),
            what="all twenty grants recorded, waiting on the first one's convergence",
        )
        counted.proxy.release()
        return [future.result() for future in [first, *rest]]

    answers: list[pb.GrantAccessResponse] = []
    with ThreadPoolExecutor(max_workers=len(buckets)) as pool:
        calls = counted.calls_of(lambda: answers.extend(burst(pool)))

    # One round for the first grant, one for the nineteen recorded while it ran.
    assert calls["PutRolePolicy"] == 2
    assert sum(calls.values()) <= 60
    assert {a.grant.state for a in answers} == {pb.GRANT_STATE_ACTIVE}
    assert len({a.grant.grant_id for a in answers}) == len(buckets)
    assert {_uploads(emulator, instance_id, bucket) for bucket in buckets} == {ALLOWED}


def _reconcile_all(counted: Counted, *, dry_run: bool) -> list[pb.Drift]:
    request = pb.ReconcileRequest(instance_id="", dry_run=dry_run)
    return list(counted.broker.stub.Reconcile(request, timeout=120).drifts)


def test_a_drift_pass_over_thirty_instances_reads_aws_in_pages(
    counted: Counted, emulator: Emulator, buckets: tuple[str, str]
) -> None:
    instances = [emulator.run_instance() for _ in range(30)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: grant(counted.broker.stub, i, buckets[0]), instances))

    drifts: list[pb.Drift] = []
    calls = counted.calls_of(lambda: drifts.extend(_reconcile_all(counted, dry_run=False)))

    # Every managed instance of the module screened at once; none examined on its own.
    assert drifts == []
    assert calls == Counter(
        {
            "GetAccountAuthorizationDetails": 1,
            "DescribeInstances": 1,
            "DescribeIamInstanceProfileAssociations": 1,
        }
    )


def test_a_drift_pass_examines_and_repairs_only_the_instances_that_differ(
    counted: Counted, emulator: Emulator, buckets: tuple[str, str]
) -> None:
    instances = [emulator.run_instance() for _ in range(3)]
    for instance_id in instances:
        grant(counted.broker.stub, instance_id, buckets[0])
    iam, broken = emulator.client("iam"), instances[1]
    iam.delete_role_policy(RoleName=role_name(broken), PolicyName="accessbroker-grants")
    assert _uploads(emulator, broken, buckets[0]) == "AccessDenied"

    drifts: list[pb.Drift] = []
    calls = counted.calls_of(lambda: drifts.extend(_reconcile_all(counted, dry_run=False)))

    assert [(d.instance_id, d.kind, d.repaired) for d in drifts] == [
        (broken, pb.DRIFT_KIND_POLICY, True)
    ]
    # The screen's three reads, the suspect's own observation, and the repair.
    assert calls["GetAccountAuthorizationDetails"] == 1
    assert calls["GetRole"] == 2  # examined, then observed again to converge
    assert calls["PutRolePolicy"] == 1
    assert {_uploads(emulator, i, buckets[0]) for i in instances} == {ALLOWED}
