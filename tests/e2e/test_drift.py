"""Drift: changes made to the broker's resources behind its back, through the AWS API, are
reported by Reconcile (changing nothing on a dry run), repaired, and audited; a foreign
association is reported and left alone; a terminated instance's grants end.

Access is checked as the instance has it (its profile's role credentials), before and after.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.audit import SYSTEM_ACTOR
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import (
    aws_associations,
    aws_policy,
    aws_profile_names,
    aws_role_exists,
    create_foreign_profile,
    grant,
)
from tests.e2e.drift import (
    GRANTS_POLICY,
    allow_reading,
    audit_events,
    aws_state,
    create_managed_policy,
    delete_profile_as_an_operator,
    delete_role_as_an_operator,
    difference,
    disassociate,
    drift_kinds_in,
    last_event_id,
    reconcile,
)
from tests.e2e.test_cli import brokerctl, brokerctl_json
from tests.rpc import refusal
from tests.waiting import wait_for

PREFIX = "in/"
# Objects the instance reads: one its grant covers, one in the other bucket it must not read.
GRANTED_KEY, OTHER_KEY = f"{PREFIX}seed", "private/seed"


@pytest.fixture(scope="module")
def broker(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """The module's broker, whose drift sweep runs only at start: the drift a test injects stays
    until the test's own Reconcile."""
    database = tmp_path_factory.mktemp("drift") / "broker.db"
    process = BrokerProcess(
        emulator, f"sqlite:///{database}", BROKER_DRIFT_SWEEP_INTERVAL_SECONDS="86400"
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def objects(emulator: Emulator, buckets: tuple[str, str]) -> tuple[str, str]:
    """The two buckets, each holding the object the tests read."""
    s3 = emulator.client("s3")
    s3.put_object(Bucket=buckets[0], Key=GRANTED_KEY, Body=b"granted")
    s3.put_object(Bucket=buckets[1], Key=OTHER_KEY, Body=b"not granted")
    return buckets


@dataclass(frozen=True)
class Managed:
    """An instance with one live grant (read on `bucket`/in/) and what AWS held right after it."""

    instance_id: str
    bucket: str
    other_bucket: str
    state: dict[str, Any]

    def reads_granted(self, emulator: Emulator) -> str:
        return emulator.try_as_instance(self.instance_id, "GetObject", self.bucket, GRANTED_KEY)

    def reads_other(self, emulator: Emulator) -> str:
        return emulator.try_as_instance(self.instance_id, "GetObject", self.other_bucket, OTHER_KEY)


def manage(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    objects: tuple[str, str],
) -> Managed:
    granted = grant(stub, instance_id, objects[0], pb.ACCESS_READ, prefix=PREFIX).grant
    assert granted.state == pb.GRANT_STATE_ACTIVE
    managed = Managed(instance_id, *objects, aws_state(emulator, instance_id))
    assert managed.reads_granted(emulator) == ALLOWED
    assert managed.reads_other(emulator) == "AccessDenied"
    return managed


@pytest.fixture
def managed(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    objects: tuple[str, str],
) -> Managed:
    return manage(stub, emulator, instance_id, objects)


def report(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, instance_id: str
) -> list[pb.Drift]:
    """Reconcile(dry_run=True) of the instance, checked to change nothing in AWS or the audit,
    and to find what a dry-run pass over every instance finds for it."""
    held, last = aws_state(emulator, instance_id), last_event_id(stub, instance_id)

    reported = reconcile(stub, instance_id, dry_run=True)
    # A pass over every instance screens them from AWS's bulk listings: it finds the same.
    everywhere = [d for d in reconcile(stub, "", dry_run=True) if d.instance_id == instance_id]

    assert [difference(d) for d in everywhere] == [difference(d) for d in reported]
    assert not any(d.repaired for d in reported)
    assert aws_state(emulator, instance_id) == held, "a dry run changed AWS"
    assert audit_events(stub, instance_id, after=last) == [], "a dry run wrote audit events"
    return reported


def repair(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, reported: list[pb.Drift]
) -> tuple[list[pb.Drift], list[pb.AuditEvent]]:
    """Reconcile(dry_run=False) of the instance, checked to find what the dry run reported;
    the drifts and the audit events it wrote."""
    last = last_event_id(stub, instance_id)

    found = reconcile(stub, instance_id, dry_run=False)

    assert [difference(d) for d in found] == [difference(d) for d in reported]
    return found, audit_events(stub, instance_id, after=last)


def report_and_repair(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> list[pb.Drift]:
    """The whole story of a drift the broker repairs: AWS differs from right after the grant;
    a dry run reports it and changes nothing; a repair reports it again, repaired, audits both,
    and puts AWS back as it was; nothing is left to find. Returns what was reported."""
    instance_id = managed.instance_id
    assert aws_state(emulator, instance_id) != managed.state, "the injection changed nothing"
    reported = report(stub, emulator, instance_id)
    assert reported, "the dry run found no drift"

    repaired, events = repair(stub, instance_id, reported)

    assert all(d.repaired for d in repaired)
    assert aws_state(emulator, instance_id) == managed.state
    kinds = [pb.DriftKind.Name(d.kind).removeprefix("DRIFT_KIND_").lower() for d in reported]
    assert drift_kinds_in(events, "drift.detected") == kinds
    assert drift_kinds_in(events, "drift.repaired") == kinds
    assert reconcile(stub, instance_id, dry_run=True) == []
    return reported


def kinds_of(drifts: list[pb.Drift]) -> list[int]:
    return [d.kind for d in drifts]


def test_an_edited_policy_is_put_back_and_the_wider_access_is_gone(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    ours = aws_policy(emulator, managed.instance_id)
    wider = {
        **ours,
        "Statement": ours["Statement"] + allow_reading(managed.other_bucket)["Statement"],
    }
    emulator.client("iam").put_role_policy(
        RoleName=f"accessbroker-{managed.instance_id}",
        PolicyName=GRANTS_POLICY,
        PolicyDocument=json.dumps(wider),
    )
    assert managed.reads_other(emulator) == ALLOWED

    reported = report_and_repair(stub, emulator, managed)

    assert kinds_of(reported) == [pb.DRIFT_KIND_POLICY]
    assert (json.loads(reported[0].expected), json.loads(reported[0].actual)) == (ours, wider)
    assert managed.reads_other(emulator) == "AccessDenied"
    assert managed.reads_granted(emulator) == ALLOWED


def test_a_deleted_policy_is_put_back_and_the_access_works_again(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    ours = aws_policy(emulator, managed.instance_id)
    emulator.client("iam").delete_role_policy(
        RoleName=f"accessbroker-{managed.instance_id}", PolicyName=GRANTS_POLICY
    )
    assert managed.reads_granted(emulator) == "AccessDenied"

    reported = report_and_repair(stub, emulator, managed)

    assert kinds_of(reported) == [pb.DRIFT_KIND_POLICY]
    assert json.loads(reported[0].expected) == ours
    assert reported[0].actual == "missing"
    assert managed.reads_granted(emulator) == ALLOWED


def test_an_extra_inline_policy_is_removed(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    emulator.client("iam").put_role_policy(
        RoleName=f"accessbroker-{managed.instance_id}",
        PolicyName="added-by-hand",
        PolicyDocument=json.dumps(allow_reading(managed.other_bucket)),
    )
    assert managed.reads_other(emulator) == ALLOWED

    reported = report_and_repair(stub, emulator, managed)

    assert kinds_of(reported) == [pb.DRIFT_KIND_EXTRA_POLICY]
    assert GRANTS_POLICY in reported[0].expected
    assert "inline policy added-by-hand" in reported[0].actual
    assert managed.reads_other(emulator) == "AccessDenied"
    assert managed.reads_granted(emulator) == ALLOWED


def test_an_attached_managed_policy_is_detached(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    # Like AmazonS3FullAccess: every S3 action on everything.
    full_access = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    arn = create_managed_policy(emulator, full_access)
    emulator.client("iam").attach_role_policy(
        RoleName=f"accessbroker-{managed.instance_id}", PolicyArn=arn
    )
    assert managed.reads_other(emulator) == ALLOWED

    reported = report_and_repair(stub, emulator, managed)

    assert kinds_of(reported) == [pb.DRIFT_KIND_EXTRA_POLICY]
    assert f"attached managed policy {arn}" in reported[0].actual
    assert managed.reads_other(emulator) == "AccessDenied"
    assert managed.reads_granted(emulator) == ALLOWED
    still_there = emulator.client("iam").get_policy(PolicyArn=arn)["Policy"]["Arn"]
    assert still_there == arn, "detached, not deleted: the policy is not the broker's"


def test_a_widened_trust_policy_is_restored(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    ec2_only = json.loads(EC2_TRUST_POLICY)
    also_another_account = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
        "Action": "sts:AssumeRole",
    }
    wider = {**ec2_only, "Statement": [*ec2_only["Statement"], also_another_account]}
    emulator.client("iam").update_assume_role_policy(
        RoleName=f"accessbroker-{managed.instance_id}", PolicyDocument=json.dumps(wider)
    )

    reported = report_and_repair(stub, emulator, managed)

    assert kinds_of(reported) == [pb.DRIFT_KIND_TRUST_POLICY]
    assert (json.loads(reported[0].expected), json.loads(reported[0].actual)) == (ec2_only, wider)
    assert managed.reads_granted(emulator) == ALLOWED


def test_a_role_removed_from_its_profile_is_put_back(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    name = f"accessbroker-{managed.instance_id}"
    emulator.client("iam").remove_role_from_instance_profile(
        InstanceProfileName=name, RoleName=name
    )
    assert managed.reads_granted(emulator) == NO_CREDENTIALS

    reported = report_and_repair(stub, emulator, managed)

    assert kinds_of(reported) == [pb.DRIFT_KIND_ROLE_IN_PROFILE]
    assert (reported[0].expected, reported[0].actual) == (f"role {name}", "no role")
    assert managed.reads_granted(emulator) == ALLOWED


def test_a_removed_association_is_restored(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    disassociate(emulator, managed.instance_id)
    assert managed.reads_granted(emulator) == NO_CREDENTIALS

    reported = report_and_repair(stub, emulator, managed)

    assert kinds_of(reported) == [pb.DRIFT_KIND_ASSOCIATION]
    assert f"accessbroker-{managed.instance_id}" in reported[0].expected
    assert reported[0].actual == "no instance profile"
    assert managed.reads_granted(emulator) == ALLOWED


def test_a_deleted_role_is_created_again(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    delete_role_as_an_operator(emulator, managed.instance_id)
    assert not aws_role_exists(emulator, managed.instance_id)
    assert managed.reads_granted(emulator) == NO_CREDENTIALS

    reported = report_and_repair(stub, emulator, managed)

    # Deleting the role took it out of its profile first: both are reported, and repaired.
    assert kinds_of(reported) == [pb.DRIFT_KIND_ROLE, pb.DRIFT_KIND_ROLE_IN_PROFILE]
    assert reported[0].actual == "missing"
    assert managed.reads_granted(emulator) == ALLOWED
    assert managed.reads_other(emulator) == "AccessDenied"


def test_a_deleted_profile_is_created_again(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    delete_profile_as_an_operator(emulator, managed.instance_id)
    assert aws_profile_names(emulator, managed.instance_id) == []
    assert managed.reads_granted(emulator) == NO_CREDENTIALS

    reported = report_and_repair(stub, emulator, managed)

    # Deleting the profile took it off the instance first: both are reported, and repaired.
    assert kinds_of(reported) == [pb.DRIFT_KIND_PROFILE, pb.DRIFT_KIND_ASSOCIATION]
    assert reported[0].actual == "missing"
    assert managed.reads_granted(emulator) == ALLOWED


def test_a_foreign_association_is_reported_and_left_alone_and_the_grants_fail(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    instance_id = managed.instance_id
    theirs = create_foreign_profile(emulator)
    disassociate(emulator, instance_id)
    emulator.client("ec2").associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": theirs}
    )
    [their_arn] = aws_state(emulator, instance_id)["associated_profiles"]

    reported = report(stub, emulator, instance_id)
    found, events = repair(stub, instance_id, reported)

    assert kinds_of(reported) == [pb.DRIFT_KIND_FOREIGN_ASSOCIATION]
    assert f"accessbroker-{instance_id}" in reported[0].expected
    assert their_arn in reported[0].actual
    assert [d.repaired for d in found] == [False]
    assert drift_kinds_in(events, "drift.detected") == ["foreign_association"]
    assert drift_kinds_in(events, "drift.repaired") == []
    grants = stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id), timeout=10).grants
    assert [g.state for g in grants] == [pb.GRANT_STATE_FAILED]
    assert "does not manage" in grants[0].failure_reason
    assert "grant.failed" in [e.action for e in events]
    assert aws_state(emulator, instance_id) == {
        "role": None,
        "profile_roles": None,
        "associated_profiles": [their_arn],
    }
    assert managed.reads_granted(emulator) == "AccessDenied", "their role, not the grant's"
    assert reconcile(stub, instance_id, dry_run=True) == []


def test_a_terminated_instance_loses_its_grants_role_and_profile(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    instance_id = managed.instance_id
    emulator.client("ec2").terminate_instances(InstanceIds=[instance_id])

    reported = report(stub, emulator, instance_id)
    found, events = repair(stub, instance_id, reported)

    assert kinds_of(reported) == [pb.DRIFT_KIND_INSTANCE_GONE]
    assert reported[0].actual == "missing"
    assert [d.repaired for d in found] == [True]
    grants = stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id), timeout=10).grants
    assert [g.state for g in grants] == [pb.GRANT_STATE_REVOKED]
    actions = [e.action for e in events]
    assert actions.index("grant.revoke_requested") < actions.index("grant.revoked")
    [requested] = [e for e in events if e.action == "grant.revoke_requested"]
    assert "no longer exists" in requested.detail
    assert drift_kinds_in(events, "drift.detected") == ["instance_gone"]
    assert drift_kinds_in(events, "drift.repaired") == ["instance_gone"]
    assert not aws_role_exists(emulator, instance_id)
    assert aws_profile_names(emulator, instance_id) == []
    assert reconcile(stub, instance_id, dry_run=True) == []


def test_an_instance_without_drift_has_none_and_nothing_is_audited(
    stub: broker_pb2_grpc.AccessBrokerStub, emulator: Emulator, managed: Managed
) -> None:
    last = last_event_id(stub, managed.instance_id)

    assert reconcile(stub, managed.instance_id, dry_run=True) == []
    assert reconcile(stub, managed.instance_id, dry_run=False) == []

    assert audit_events(stub, managed.instance_id, after=last) == []
    assert aws_state(emulator, managed.instance_id) == managed.state


def test_an_empty_instance_id_covers_every_managed_instance(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    objects: tuple[str, str],
    managed: Managed,
) -> None:
    second = manage(stub, emulator, emulator.run_instance(), objects)
    for each in (managed, second):
        disassociate(emulator, each.instance_id)
    ours = {managed.instance_id, second.instance_id}

    reported = [d for d in reconcile(stub, "", dry_run=True) if d.instance_id in ours]
    repaired = [d for d in reconcile(stub, "", dry_run=False) if d.instance_id in ours]

    assert sorted((d.instance_id, d.kind) for d in reported) == sorted(
        (i, pb.DRIFT_KIND_ASSOCIATION) for i in ours
    )
    assert [difference(d) for d in repaired] == [difference(d) for d in reported]
    assert all(d.repaired for d in repaired)
    for each in (managed, second):
        assert aws_state(emulator, each.instance_id) == each.state
        assert each.reads_granted(emulator) == ALLOWED


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_malformed_instance_id_is_invalid(
    stub: broker_pb2_grpc.AccessBrokerStub, dry_run: bool
) -> None:
    request = pb.ReconcileRequest(instance_id="i-NOT-AN-ID", dry_run=dry_run)

    refused = refusal(lambda: stub.Reconcile(request, timeout=10))

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(refused.violations) == ["instance_id"]


def test_brokerctl_drift_shows_a_table_and_repairs(
    broker: BrokerProcess, emulator: Emulator, managed: Managed
) -> None:
    instance_id = managed.instance_id
    disassociate(emulator, instance_id)

    shown = brokerctl(broker, "drift", "--instance", instance_id).stdout.splitlines()
    assert shown[0].split() == ["INSTANCE", "KIND", "EXPECTED", "ACTUAL", "REPAIRED"]
    assert shown[1].split()[:2] == [instance_id, "association"]
    assert shown[1].split()[-1] == "-"
    assert "Nothing was changed" in shown[-1]
    as_json = brokerctl_json(broker, "drift", "--instance", instance_id)
    assert as_json["repair"] is False
    assert [(d["instance_id"], d["kind"], d["repaired"]) for d in as_json["drifts"]] == [
        (instance_id, "association", False)
    ]
    assert as_json["drifts"][0]["actual"] == "no instance profile"
    assert aws_associations(emulator, instance_id) == []

    repaired = brokerctl(broker, "drift", "--instance", instance_id, "--repair").stdout
    row = repaired.splitlines()[1].split()
    assert (row[:2], row[-1]) == ([instance_id, "association"], "yes")
    assert aws_state(emulator, instance_id) == managed.state
    after = brokerctl_json(broker, "drift", "--instance", instance_id, "--repair")
    assert after == {"repair": True, "drifts": []}
    assert brokerctl(broker, "drift", "--instance", instance_id).stdout.strip() == "No drift."


def test_the_background_sweep_repairs_drift_on_its_own(
    emulator: Emulator, objects: tuple[str, str], instance_id: str, tmp_path: Path
) -> None:
    sweeping = BrokerProcess(
        emulator,
        f"sqlite:///{tmp_path / 'sweeping.db'}",
        BROKER_DRIFT_SWEEP_INTERVAL_SECONDS="1",
        BROKER_SWEEP_INTERVAL_SECONDS="1",
    )
    sweeping.start()
    try:
        managed = manage(sweeping.stub, emulator, instance_id, objects)
        arn = create_managed_policy(emulator, allow_reading(managed.other_bucket))
        # No access check here: the sweep may repair the drift any moment now.
        emulator.client("iam").attach_role_policy(
            RoleName=f"accessbroker-{instance_id}", PolicyArn=arn
        )
        repaired = wait_for_repair(sweeping.stub, instance_id)
    finally:
        sweeping.stop()

    assert [(e.actor, json.loads(e.detail)["kind"]) for e in repaired] == [
        (SYSTEM_ACTOR, "extra_policy")
    ]
    assert arn in json.loads(repaired[0].detail)["actual"]
    assert aws_state(emulator, instance_id) == managed.state
    assert managed.reads_other(emulator) == "AccessDenied"
    assert managed.reads_granted(emulator) == ALLOWED


def wait_for_repair(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str
) -> list[pb.AuditEvent]:
    """The instance's drift.repaired events, once there are any: the sweep runs every second,
    and the wait allows for a machine too loaded to keep to that."""
    return wait_for(
        lambda: [e for e in audit_events(stub, instance_id) if e.action == "drift.repaired"],
        bool,
        what=f"the background sweep repairing the drift on {instance_id} (drift.repaired)",
        interval=0.5,
    )
