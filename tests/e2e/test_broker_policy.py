"""deploy/iam/broker-policy.json is enough for the broker, and no more than its path allows.

The broker runs as an IAM user holding exactly that file, under the emulator's authorization,
which checks roles and instance profiles on their real ARNs and asks for iam:PassRole as AWS
does (broker/sandbox/authorization.py).
"""

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from accessbroker.v1 import broker_pb2 as pb
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Credentials, Emulator
from broker.sandbox.emulator import ACCOUNT_ID
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.aws_outcomes import refusal
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import (
    aws_associations,
    aws_profile_names,
    aws_role_exists,
    create_foreign_profile,
    grant,
)
from tests.e2e.test_adoption import owners_profile
from tests.e2e.test_orphans import leave_orphan
from tests.waiting import NeverHappened, wait_until

POLICY_DIRECTORY = Path(__file__).parents[2] / "deploy" / "iam"
POLICY_FILE = POLICY_DIRECTORY / "broker-policy.json"
ADOPTION_FILE = POLICY_DIRECTORY / "broker-adoption-policy.json"
OWN_ROLES = "arn:aws:iam::*:role/accessbroker/accessbroker-*"
OWN_PROFILES = "arn:aws:iam::*:instance-profile/accessbroker/accessbroker-*"


def broker_policy(without_sid: str | None = None) -> dict[str, Any]:
    """The file's policy; `without_sid` drops that one statement."""
    policy: dict[str, Any] = json.loads(POLICY_FILE.read_text())
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != without_sid]
    return policy


def identity_holding(emulator: Emulator, policy: dict[str, Any]) -> Credentials:
    """A new IAM user whose only permissions are `policy`, and its access key."""
    iam, user = emulator.client("iam"), f"broker-{uuid.uuid4().hex[:12]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="broker", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def credentials_env(credentials: Credentials) -> dict[str, str]:
    """Variables that make the broker sign its AWS calls as `credentials` instead of the admin."""
    return {
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
    }


def broker_as(emulator: Emulator, credentials: Credentials, database: Path) -> BrokerProcess:
    return BrokerProcess(emulator, f"sqlite:///{database}", **credentials_env(credentials))


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_the_policies_name_every_action_and_write_only_the_brokers_names() -> None:
    adoption = json.loads(ADOPTION_FILE.read_text())
    for statement in broker_policy()["Statement"] + adoption["Statement"]:
        assert not [a for a in as_list(statement["Action"]) if "*" in a], statement
    for statement in broker_policy()["Statement"]:
        if statement["Effect"] == "Deny":
            continue  # takes away: may name anything
        iam_writes = [
            action
            for action in as_list(statement["Action"])
            if action.startswith("iam:") and not action.startswith(("iam:Get", "iam:List"))
        ]
        assert not iam_writes or statement["Resource"] in (OWN_ROLES, OWN_PROFILES), statement


@pytest.fixture(scope="module")
def least_privilege(emulator: Emulator) -> Credentials:
    return identity_holding(emulator, broker_policy())


@pytest.fixture(scope="module")
def least_privileged_broker(
    emulator: Emulator, least_privilege: Credentials, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerProcess]:
    process = broker_as(emulator, least_privilege, tmp_path_factory.mktemp("policy") / "b.db")
    process.start()
    yield process
    process.stop()


def test_the_policy_may_read_the_boundary_it_is_given_and_its_roles_carry_it(
    emulator: Emulator,
    least_privilege: Credentials,
    instance_id: str,
    buckets: tuple[str, str],
    tmp_path: Path,
) -> None:
    arn = emulator.permissions_boundary()
    process = BrokerProcess(
        emulator, f"sqlite:///{tmp_path / 'b.db'}", **credentials_env(least_privilege)
    )
    process.start()  # the boundary was read and found within the access levels' actions
    try:
        grant(process.stub, instance_id, buckets[0], pb.ACCESS_UPLOAD, "up/")
    finally:
        process.stop()

    role = emulator.client("iam").get_role(RoleName=f"accessbroker-{instance_id}")["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "up/a") == ALLOWED


def test_the_policy_is_enough_to_grant_and_revoke(
    least_privileged_broker: BrokerProcess,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    stub, (data, other) = least_privileged_broker.stub, buckets
    emulator.client("s3").put_object(Bucket=other, Key="in/report.csv", Body=b"x")

    upload = grant(stub, instance_id, data, pb.ACCESS_UPLOAD, "up/").grant
    read = grant(stub, instance_id, other, pb.ACCESS_READ, "in/").grant

    assert (upload.state, read.state) == (pb.GRANT_STATE_ACTIVE, pb.GRANT_STATE_ACTIVE)
    assert emulator.try_as_instance(instance_id, "PutObject", data, "up/a.txt") == ALLOWED
    assert emulator.try_as_instance(instance_id, "GetObject", other, "in/report.csv") == ALLOWED

    for granted in (upload, read):
        revoked = stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=granted.grant_id)).grant
        assert revoked.state == pb.GRANT_STATE_REVOKED

    assert emulator.try_as_instance(instance_id, "PutObject", data, "up/b.txt") == NO_CREDENTIALS
    assert not aws_role_exists(emulator, instance_id)
    assert aws_profile_names(emulator, instance_id) == []
    assert aws_associations(emulator, instance_id) == []


def test_it_cannot_create_a_role_or_profile_outside_its_path(
    emulator: Emulator, least_privilege: Credentials
) -> None:
    iam, name = emulator.client("iam", least_privilege), f"accessbroker-{uuid.uuid4().hex[:12]}"
    # With the boundary, so that only the path and name are in question.
    role: dict[str, Any] = {
        "AssumeRolePolicyDocument": EC2_TRUST_POLICY,
        "PermissionsBoundary": emulator.permissions_boundary(),
    }

    for path in ("/", "/other/", "/accessbroker/nested/"):
        message = refusal(iam.create_role, RoleName=name, Path=path, **role)
        assert f"iam:CreateRole on resource: arn:aws:iam::{ACCOUNT_ID}:role{path}{name}" in message
        refusal(iam.create_instance_profile, InstanceProfileName=name, Path=path)
    refusal(
        iam.create_role,
        RoleName=f"someone-else-{uuid.uuid4().hex[:12]}",
        Path="/accessbroker/",
        **role,
    )

    # On its path and with its name prefix, the same identity may.
    iam.create_role(RoleName=name, Path="/accessbroker/", **role)
    iam.delete_role(RoleName=name)


@pytest.fixture
def foreign_profile(emulator: Emulator) -> str:
    return create_foreign_profile(emulator)


def test_it_cannot_pass_a_role_outside_its_path(
    emulator: Emulator, least_privilege: Credentials, instance_id: str, foreign_profile: str
) -> None:
    iam, ec2 = emulator.client("iam", least_privilege), emulator.client("ec2", least_privilege)
    foreign_role = f"arn:aws:iam::{ACCOUNT_ID}:role/{foreign_profile}"

    message = refusal(
        ec2.associate_iam_instance_profile,
        InstanceId=instance_id,
        IamInstanceProfile={"Name": foreign_profile},
    )
    assert f"iam:PassRole on resource: {foreign_role}" in message
    assert aws_associations(emulator, instance_id) == []

    # Nor can it wrap a foreign role in a profile of its own.
    own = f"accessbroker-{uuid.uuid4().hex[:12]}"
    iam.create_instance_profile(InstanceProfileName=own, Path="/accessbroker/")
    try:
        message = refusal(
            iam.add_role_to_instance_profile, InstanceProfileName=own, RoleName=foreign_profile
        )
        assert f"iam:PassRole on resource: {foreign_role}" in message
    finally:
        iam.delete_instance_profile(InstanceProfileName=own)


def refused_without(
    sid: str, emulator: Emulator, database: Path, request: Callable[[BrokerProcess], object]
) -> tuple[str, str]:
    """A negative control: what `request`, made to a broker holding the policy without the
    statement `sid`, fails with (its details), and what the broker logged meanwhile."""
    credentials = identity_holding(emulator, broker_policy(without_sid=sid))
    process = broker_as(emulator, credentials, database)
    process.start()
    try:
        with pytest.raises(grpc.RpcError) as failed:
            request(process)
    finally:
        process.stop()
    return str(failed.value.details()), "".join(process.output)


def test_without_pass_role_the_grant_fails(
    emulator: Emulator, instance_id: str, buckets: tuple[str, str], tmp_path: Path
) -> None:
    """The negative control: the emulator's enforcement is real, and the statement needed."""
    details, logged = refused_without(
        "PassOwnRolesToEc2Only",
        emulator,
        tmp_path / "b.db",
        lambda process: grant(process.stub, instance_id, buckets[0], pb.ACCESS_UPLOAD, "up/"),
    )

    assert "AddRoleToInstanceProfile failed: AccessDenied" in details
    assert "is not authorized to perform: iam:PassRole" in logged
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "up/a") == NO_CREDENTIALS
    assert aws_associations(emulator, instance_id) == []


def test_the_policy_edited_for_another_path_lets_the_sweep_remove_orphans(
    emulator: Emulator, tmp_path: Path
) -> None:
    """As deploy/iam/README.md says: a broker on another role path needs the path edited. The
    sweep also uses the calls a grant does not: listing roles and profiles, reading tags."""
    path = f"/policy-{uuid.uuid4().hex[:8]}/"
    policy = json.loads(POLICY_FILE.read_text().replace("/accessbroker/", path))
    orphan = emulator.run_instance()
    leave_orphan(emulator, orphan, path)
    process = BrokerProcess(
        emulator,
        f"sqlite:///{tmp_path / 'b.db'}",
        **credentials_env(identity_holding(emulator, policy)),
        BROKER_ROLE_PATH=path,
        BROKER_REMOVE_ORPHANS="true",
    )
    process.start()
    try:
        wait_until(
            lambda: not aws_role_exists(emulator, orphan),
            what="the sweep at start removing the orphan's role",
        )
    except NeverHappened as never:
        # What the broker logged says why: an AccessDenied names the call the policy lacks.
        raise NeverHappened(f"{never}; the broker's output:\n{''.join(process.output)}") from None
    finally:
        process.stop()

    assert aws_profile_names(emulator, orphan) == []
    assert aws_associations(emulator, orphan) == []


def test_it_cannot_touch_a_foreign_role(
    emulator: Emulator, least_privilege: Credentials, foreign_profile: str
) -> None:
    iam = emulator.client("iam", least_privilege)
    document = json.dumps(broker_policy())

    refusal(iam.get_instance_profile, InstanceProfileName=foreign_profile)
    refusal(iam.put_role_policy, RoleName=foreign_profile, PolicyName="p", PolicyDocument=document)
    refusal(iam.delete_role, RoleName=foreign_profile)


def test_with_the_adoption_policy_too_it_adopts_a_foreign_profile(
    emulator: Emulator, instance_id: str, buckets: tuple[str, str], tmp_path: Path
) -> None:
    data, other = buckets
    role = owners_profile(emulator, instance_id, other)
    policy = broker_policy()
    policy["Statement"] += json.loads(ADOPTION_FILE.read_text())["Statement"]
    process = BrokerProcess(
        emulator,
        f"sqlite:///{tmp_path / 'b.db'}",
        **credentials_env(identity_holding(emulator, policy)),
        BROKER_FOREIGN_PROFILE="attach",
    )
    process.start()
    try:
        granted = grant(process.stub, instance_id, data, pb.ACCESS_UPLOAD, "up/").grant
        assert (granted.state, granted.role_name) == (pb.GRANT_STATE_ACTIVE, role)
        assert emulator.try_as_instance(instance_id, "PutObject", data, "up/a") == ALLOWED
        process.stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=granted.grant_id), timeout=60)
    finally:
        process.stop()

    assert emulator.try_as_instance(instance_id, "PutObject", data, "up/b") == "AccessDenied"


def _drift_pass_repairs_a_deleted_policy(
    process: BrokerProcess, emulator: Emulator, instance_id: str, bucket: str
) -> list[pb.Drift]:
    """Grants upload on `bucket`, deletes the grant's policy behind the broker's back, and
    answers what a pass over every instance (Reconcile without an instance) found."""
    grant(process.stub, instance_id, bucket, pb.ACCESS_UPLOAD, "up/")
    emulator.client("iam").delete_role_policy(
        RoleName=f"accessbroker-{instance_id}", PolicyName="accessbroker-grants"
    )
    request = pb.ReconcileRequest(instance_id="", dry_run=False)
    return list(process.stub.Reconcile(request, timeout=60).drifts)


def test_the_policy_is_enough_for_a_drift_pass_over_every_instance(
    least_privileged_broker: BrokerProcess,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    drifts = _drift_pass_repairs_a_deleted_policy(
        least_privileged_broker, emulator, instance_id, buckets[0]
    )

    assert [(d.instance_id, d.kind, d.repaired) for d in drifts] == [
        (instance_id, pb.DRIFT_KIND_POLICY, True)
    ]
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "up/a") == ALLOWED


def test_without_the_account_listing_a_drift_pass_fails(
    emulator: Emulator, instance_id: str, buckets: tuple[str, str], tmp_path: Path
) -> None:
    """The negative control: the listing is needed, and asked for as AWS would."""
    details, _ = refused_without(
        "ListRolesForDriftPass",
        emulator,
        tmp_path / "b.db",
        lambda process: _drift_pass_repairs_a_deleted_policy(
            process, emulator, instance_id, buckets[0]
        ),
    )

    assert "GetAccountAuthorizationDetails failed: AccessDenied" in details
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "up/a") == "AccessDenied"


def test_the_adoption_policy_writes_only_on_roles_tagged_adoptable(
    emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    """The iam:ResourceTag condition, evaluated by the emulator as IAM does: the tag the
    platform team puts on a role is what lets the broker write on it."""
    policy = broker_policy()
    policy["Statement"] += json.loads(ADOPTION_FILE.read_text())["Statement"]
    iam = emulator.client("iam", identity_holding(emulator, policy))
    tagged = owners_profile(emulator, instance_id, buckets[1])
    untagged = owners_profile(emulator, emulator.run_instance(), buckets[1], adoptable=False)
    read = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{buckets[0]}/*"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [read]})

    iam.put_role_policy(RoleName=tagged, PolicyName="accessbroker-grants", PolicyDocument=document)
    iam.delete_role_policy(RoleName=tagged, PolicyName="accessbroker-grants")
    write = {"RoleName": untagged, "PolicyName": "accessbroker-grants", "PolicyDocument": document}
    assert "iam:PutRolePolicy" in refusal(iam.put_role_policy, **write)
