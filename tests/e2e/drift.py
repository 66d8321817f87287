"""Helpers for the drift tests: what AWS holds for an instance, changes made behind the broker's
back, and Reconcile calls with the audit events they write."""

import json
import uuid
from typing import Any

from mypy_boto3_iam.client import IAMClient

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.sandbox import Emulator
from tests.e2e.calls import aws_associations, role_name

GRANTS_POLICY = "accessbroker-grants"


def aws_state(emulator: Emulator, instance_id: str) -> dict[str, Any]:
    """What AWS holds for the instance's role, profile and association, without the ids AWS
    makes up anew each time (a repaired association gets a new one)."""
    iam, name = emulator.client("iam"), role_name(instance_id)
    return {
        "role": _role(iam, name),
        "profile_roles": _profile_roles(iam, name),
        "associated_profiles": [
            a["IamInstanceProfile"]["Arn"] for a in aws_associations(emulator, instance_id)
        ],
    }


def _role(iam: IAMClient, name: str) -> dict[str, Any] | None:
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        return None
    return {
        "arn": role["Arn"],
        "tags": sorted((t["Key"], t["Value"]) for t in role.get("Tags", [])),
        "trust_policy": role["AssumeRolePolicyDocument"],
        "inline_policies": {
            policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
        },
        "attached_policies": [
            p["PolicyArn"]
            for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        ],
    }


def _profile_roles(iam: IAMClient, name: str) -> list[str] | None:
    try:
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except iam.exceptions.NoSuchEntityException:
        return None
    return [r["RoleName"] for r in profile["Roles"]]


def allow_reading(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
        ],
    }


def create_managed_policy(emulator: Emulator, document: dict[str, Any]) -> str:
    """The ARN of a new customer managed policy holding `document`."""
    created = emulator.client("iam").create_policy(
        PolicyName=f"by-hand-{uuid.uuid4().hex[:12]}", PolicyDocument=json.dumps(document)
    )
    return created["Policy"]["Arn"]


def disassociate(emulator: Emulator, instance_id: str) -> None:
    ec2 = emulator.client("ec2")
    for association in aws_associations(emulator, instance_id):
        ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])


def delete_role_as_an_operator(emulator: Emulator, instance_id: str) -> None:
    """IAM deletes a role only once no profile holds it and it has no policies left."""
    iam, name = emulator.client("iam"), role_name(instance_id)
    iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=name)
    iam.delete_role_policy(RoleName=name, PolicyName=GRANTS_POLICY)
    iam.delete_role(RoleName=name)


def delete_profile_as_an_operator(emulator: Emulator, instance_id: str) -> None:
    """IAM deletes a profile only once it holds no role; EC2 must let go of it first."""
    iam, name = emulator.client("iam"), role_name(instance_id)
    disassociate(emulator, instance_id)
    iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=name)
    iam.delete_instance_profile(InstanceProfileName=name)


def reconcile(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, *, dry_run: bool
) -> list[pb.Drift]:
    request = pb.ReconcileRequest(instance_id=instance_id, dry_run=dry_run)
    return list(stub.Reconcile(request, timeout=60).drifts)


def difference(drift: pb.Drift) -> tuple[str, int, str, str]:
    """A drift without whether it was repaired."""
    return (drift.instance_id, drift.kind, drift.expected, drift.actual)


def audit_events(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, after: int = 0
) -> list[pb.AuditEvent]:
    """The instance's audit events, oldest first; only those after event id `after`."""
    request = pb.ListAuditEventsRequest(instance_id=instance_id, page_size=1000)
    events = stub.ListAuditEvents(request, timeout=10).events
    return [e for e in events if e.event_id > after]


def last_event_id(stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str) -> int:
    events = audit_events(stub, instance_id)
    return events[-1].event_id if events else 0


def drift_kinds_in(events: list[pb.AuditEvent], action: str) -> list[str]:
    """The drift kinds named by the events of `action`, in order."""
    return [json.loads(e.detail)["kind"] for e in events if e.action == action]
