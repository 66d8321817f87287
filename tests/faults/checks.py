"""Comparing what AWS holds with what the broker's grants ask for, and with its audit trail.

Each check returns readable discrepancies (empty: all is well), so a test asserts `== []` and a
failure says exactly what differs.
"""

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.grants import GrantScope
from broker.domain.policy import build_policy
from broker.entrypoints.grpc.mapping import ACCESS_FROM_PROTO
from broker.sandbox import Emulator
from tests.faults.proxy import Exchange

if TYPE_CHECKING:
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_iam.client import IAMClient

POLICY_NAME = "accessbroker-grants"
_MANAGED_NAME = re.compile(r"accessbroker-(i-[0-9a-f]+)")
_ASSOCIATION = re.compile(r"<associationId>([^<]+)</associationId><instanceId>([^<]+)</instanceId>")

# The audit action (aws.<step>) each mutating AWS action is recorded under.
STEP_OF_ACTION = {
    "CreateRole": "create_role",
    "PutRolePolicy": "put_policy",
    "CreateInstanceProfile": "create_profile",
    "AddRoleToInstanceProfile": "add_role_to_profile",
    "AssociateIamInstanceProfile": "associate",
    "DisassociateIamInstanceProfile": "disassociate",
    "RemoveRoleFromInstanceProfile": "remove_role_from_profile",
    "DeleteInstanceProfile": "delete_profile",
    "DeleteRolePolicy": "delete_policy",
    "DeleteRole": "delete_role",
}
# Each resource of an instance, and the steps that make and unmake it.
RESOURCES = {
    "role": ("create_role", "delete_role"),
    "inline policy": ("put_policy", "delete_policy"),
    "instance profile": ("create_profile", "delete_profile"),
    "role in profile": ("add_role_to_profile", "remove_role_from_profile"),
    "association": ("associate", "disassociate"),
}


def live_grants(grants: Iterable[pb.Grant]) -> list[pb.Grant]:
    return [g for g in grants if g.state == pb.GRANT_STATE_ACTIVE]


def expected_policy(grants: Iterable[pb.Grant]) -> dict[str, Any] | None:
    scopes = [GrantScope(g.bucket, g.prefix, ACCESS_FROM_PROTO[g.access]) for g in grants]
    return build_policy(scopes)


@dataclass(frozen=True)
class AwsView:
    """What AWS holds for one instance under the broker's names."""

    role: bool
    policy_names: list[str]
    policy: dict[str, Any] | None
    profile_roles: list[str] | None
    profile_arn: str
    association_arns: list[str]

    def has(self, resource: str) -> bool:
        return {
            "role": self.role,
            "inline policy": self.policy is not None,
            "instance profile": self.profile_roles is not None,
            "role in profile": bool(self.profile_roles),
            "association": bool(self.association_arns),
        }[resource]


@cache
def _iam(emulator: Emulator) -> "IAMClient":
    return emulator.client("iam")  # building a client takes a while: one per emulator


@cache
def _ec2(emulator: Emulator) -> "EC2Client":
    return emulator.client("ec2")


def aws_view(emulator: Emulator, instance_id: str) -> AwsView:
    iam, name = _iam(emulator), f"accessbroker-{instance_id}"
    try:
        iam.get_role(RoleName=name)
        policy_names = list(iam.list_role_policies(RoleName=name)["PolicyNames"])
        role = True
    except iam.exceptions.NoSuchEntityException:
        role, policy_names = False, []
    policy = None
    if POLICY_NAME in policy_names:
        document: Any = iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)
        found = document["PolicyDocument"]
        policy = dict(found) if isinstance(found, dict) else json.loads(found)
    try:
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        profile_roles: list[str] | None = [r["RoleName"] for r in profile["Roles"]]
        profile_arn = profile["Arn"]
    except iam.exceptions.NoSuchEntityException:
        profile_roles, profile_arn = None, ""
    associations = _ec2(emulator).describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    arns = [
        a["IamInstanceProfile"]["Arn"]
        for a in associations
        if a["State"] in ("associating", "associated")
    ]
    return AwsView(role, policy_names, policy, profile_roles, profile_arn, arns)


def drift(emulator: Emulator, instance_id: str, grants: Sequence[pb.Grant]) -> list[str]:
    """How AWS differs from what the instance's live (ACTIVE) grants need."""
    live, seen, name = (
        live_grants(grants),
        aws_view(emulator, instance_id),
        f"accessbroker-{instance_id}",
    )
    if not live:
        held = [r for r in RESOURCES if r != "role in profile" and seen.has(r)]
        return [f"{instance_id}: no live grants but AWS holds its {r}" for r in held]
    problems = []
    if not seen.role:
        problems.append(f"{instance_id}: role {name} is missing")
    if seen.policy_names != [POLICY_NAME] or seen.policy != expected_policy(live):
        problems.append(
            f"{instance_id}: inline policies {seen.policy_names} hold {seen.policy}, "
            f"expected {expected_policy(live)}"
        )
    if seen.profile_roles != [name]:
        problems.append(
            f"{instance_id}: profile holds roles {seen.profile_roles}, expected [{name}]"
        )
    if seen.association_arns != [seen.profile_arn]:
        problems.append(
            f"{instance_id}: associations {seen.association_arns}, expected [{seen.profile_arn}]"
        )
    return problems


def leaks(emulator: Emulator, role_path: str, live_instances: Iterable[str]) -> list[str]:
    """Roles and profiles under the broker's path that no live grant needs."""
    wanted = {f"accessbroker-{i}" for i in live_instances}
    iam = _iam(emulator)
    roles = [
        r["RoleName"]
        for page in iam.get_paginator("list_roles").paginate(PathPrefix=role_path)
        for r in page["Roles"]
        if r["Path"].startswith(role_path)
    ]
    profiles = [
        p["InstanceProfileName"]
        for page in iam.get_paginator("list_instance_profiles").paginate(PathPrefix=role_path)
        for p in page["InstanceProfiles"]
        if p["Path"].startswith(role_path)
    ]
    return [f"role {n} leaked" for n in roles if n not in wanted] + [
        f"instance profile {n} leaked" for n in profiles if n not in wanted
    ]


def audit_events(stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str) -> list[pb.AuditEvent]:
    events: list[pb.AuditEvent] = []
    token = ""
    while True:
        page = stub.ListAuditEvents(
            pb.ListAuditEventsRequest(instance_id=instance_id, page_size=200, page_token=token),
            timeout=30,
        )
        events.extend(page.events)
        token = page.next_page_token
        if not token:
            return events


def grant_trail_gaps(grants: Iterable[pb.Grant], events: Sequence[pb.AuditEvent]) -> list[str]:
    """Every grant's request and end state are in the trail."""
    by_grant: dict[str, set[str]] = {}
    for event in events:
        by_grant.setdefault(event.grant_id, set()).add(event.action)
    needed = {
        pb.GRANT_STATE_ACTIVE: {"grant.requested", "grant.active"},
        pb.GRANT_STATE_REVOKED: {"grant.requested", "grant.revoke_requested", "grant.revoked"},
        pb.GRANT_STATE_FAILED: {"grant.requested", "grant.failed"},
    }
    gaps = []
    for grant in grants:
        missing = needed.get(grant.state, set()) - by_grant.get(grant.grant_id, set())
        if missing:
            gaps.append(f"grant {grant.grant_id} ({pb.GrantState.Name(grant.state)}): no {missing}")
    return gaps


def instance_of(exchange: Exchange, associations: dict[str, str]) -> str:
    """The instance a mutating call acted for, from the broker's names or the association."""
    params = exchange.params
    for value in (params.get("RoleName", ""), params.get("InstanceProfileName", "")):
        match = _MANAGED_NAME.fullmatch(value)
        if match:
            return match.group(1)
    return params.get("InstanceId") or associations.get(params.get("AssociationId", ""), "")


def known_associations(exchanges: Iterable[Exchange]) -> dict[str, str]:
    """Association id -> instance id, from every EC2 answer that named one."""
    found: dict[str, str] = {}
    for exchange in exchanges:
        for association_id, instance_id in _ASSOCIATION.findall(exchange.response_body.decode()):
            found[association_id] = instance_id
    return found


def aws_trail_gaps(
    emulator: Emulator,
    instance_id: str,
    events: Sequence[pb.AuditEvent],
    exchanges: Sequence[Exchange],
    *,
    excuse_unheard: bool = True,
) -> list[str]:
    """The aws.* events against the changes the proxy saw AWS make for the instance.

    Completeness here means three things:
    1. every change whose success the broker heard (AWS answered 2xx and the answer arrived)
       has an aws.<step> event: the trail never misses a change the broker knew it made;
    2. every aws.<step> event has at least one request of that action that reached AWS: the
       trail never claims a change nobody attempted (an event may stand for a change whose
       answer was lost, when the retry found it done: EntityAlreadyExists, NoSuchEntity);
    3. replaying the trail (each resource's last make/unmake event) gives what AWS holds now.
       A change whose answer never reached the broker (dropped answer, every retry failed, or
       the broker killed meanwhile) is invisible to it: the next convergence finds it done and
       plans no step for it. With `excuse_unheard`, a resource with such a change is exempt.
    """
    associations = known_associations(exchanges)
    ours = [
        e
        for e in exchanges
        if e.action in STEP_OF_ACTION and instance_of(e, associations) == instance_id
    ]
    heard = Counter(STEP_OF_ACTION[e.action] for e in ours if e.changed_aws and e.answered)
    tried = {STEP_OF_ACTION[e.action] for e in ours if e.reached_aws}
    unheard = {STEP_OF_ACTION[e.action] for e in ours if e.changed_aws and not e.answered}
    steps = [e.action.removeprefix("aws.") for e in events if e.action.startswith("aws.")]
    recorded = Counter(steps)
    gaps = [
        f"{instance_id}: {count} {step} change(s) heard by the broker, {recorded[step]} audited"
        for step, count in heard.items()
        if recorded[step] < count
    ]
    gaps += [
        f"{instance_id}: aws.{s} audited but never attempted" for s in recorded if s not in tried
    ]
    seen = aws_view(emulator, instance_id)
    for resource, (make, unmake) in RESOURCES.items():
        last = [s for s in steps if s in (make, unmake)]
        replayed = bool(last) and last[-1] == make
        if replayed == seen.has(resource):
            continue
        if excuse_unheard and {make, unmake} & unheard:
            continue
        gaps.append(
            f"{instance_id}: the trail says its {resource} "
            f"{'exists' if replayed else 'does not exist'}, AWS says otherwise"
        )
    return gaps
