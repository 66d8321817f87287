"""The sweep at start removes a role and profile the broker made that no grant needs, and
nothing it did not make.

The broker runs on a role path of this test's own: the emulator is shared by the whole session,
and a broker treats every managed role on its path without a grant in its database as orphaned.
"""

import json
import uuid
from pathlib import Path

from accessbroker.v1 import broker_pb2 as pb
from broker.domain.naming import ManagedNames
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_associations, aws_profile_names, aws_role_names
from tests.places import at_home
from tests.waiting import wait_for


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def leave_orphan(emulator: Emulator, instance_id: str, path: str) -> None:
    """A role, policy, profile and association as a broker that lost its record leaves them."""
    iam, names = emulator.client("iam"), ManagedNames(at_home(instance_id), path)
    iam.create_role(
        RoleName=names.role_name,
        Path=path,
        AssumeRolePolicyDocument=EC2_TRUST_POLICY,
        Tags=tag_list(names.tags),  # type: ignore[arg-type]
    )
    iam.put_role_policy(
        RoleName=names.role_name,
        PolicyName=names.policy_name,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
                ],
            }
        ),
    )
    iam.create_instance_profile(
        InstanceProfileName=names.profile_name,
        Path=path,
        Tags=tag_list(names.tags),  # type: ignore[arg-type]
    )
    iam.add_role_to_instance_profile(
        InstanceProfileName=names.profile_name, RoleName=names.role_name
    )
    emulator.client("ec2").associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": names.profile_name}
    )


def look_alike(emulator: Emulator, instance_id: str, path: str, tags: dict[str, str]) -> str:
    name = f"accessbroker-{instance_id}"
    emulator.client("iam").create_role(
        RoleName=name,
        Path=path,
        AssumeRolePolicyDocument=EC2_TRUST_POLICY,
        Tags=tag_list(tags),  # type: ignore[arg-type]
    )
    return name


def trail(process: BrokerProcess, instance_id: str) -> list[tuple[str, str]]:
    """The instance's audit trail as (action, actor), oldest first."""
    request = pb.ListAuditEventsRequest(instance_id=instance_id)
    return [(e.action, e.actor) for e in process.stub.ListAuditEvents(request, timeout=10).events]


def test_the_sweep_at_start_removes_orphans_and_only_them(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = f"/orphans-{uuid.uuid4().hex[:8]}/"
    orphan = emulator.run_instance()
    leave_orphan(emulator, orphan, path)
    untagged = look_alike(emulator, emulator.run_instance(), path, {})
    elsewhere_id = emulator.run_instance()
    elsewhere = look_alike(
        emulator, elsewhere_id, f"{path}other/", ManagedNames(at_home(elsewhere_id), path).tags
    )
    orphan_role = f"accessbroker-{orphan}"
    assert orphan_role in aws_role_names(emulator)

    process = BrokerProcess(
        emulator,
        f"sqlite:///{tmp_path / 'b.db'}",
        BROKER_ROLE_PATH=path,
        BROKER_REMOVE_ORPHANS="true",
    )
    process.start()
    try:
        # Deleting the role is the teardown's last step, and each step is audited once AWS has
        # done it: wait for that record, so that the whole trail is there to compare.
        events = wait_for(
            lambda: trail(process, orphan),
            lambda seen: ("aws.delete_role", "system") in seen,
            what="the sweep at start recording the orphaned role's deletion (aws.delete_role)",
        )
    finally:
        process.stop()

    roles = aws_role_names(emulator)
    assert orphan_role not in roles
    assert aws_profile_names(emulator, orphan) == []
    assert aws_associations(emulator, orphan) == []
    assert {untagged, elsewhere} <= set(roles), "look-alikes are never touched"
    assert {actor for _, actor in events} == {"system"}
    assert [action for action, _ in events] == [
        "instance.orphan_found",
        # What was left behind enters the trail as found, so replaying the trail matches AWS.
        "aws.create_role",
        "aws.put_policy",
        "aws.create_profile",
        "aws.add_role_to_profile",
        "aws.associate",
        "aws.disassociate",
        "aws.remove_role_from_profile",
        "aws.delete_profile",
        "aws.delete_policy",
        "aws.delete_role",
    ]
