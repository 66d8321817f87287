"""BotoIam against the emulator over HTTP: what the Iam port's contract (tests/contract) leaves
to the adapter, waiting out IAM's propagation and IAM's own validation."""

import json
import threading
from typing import Any

import pytest
from mypy_boto3_iam.client import IAMClient

from broker.adapters.aws import BotoIam
from broker.domain.errors import AwsRejected
from broker.domain.naming import DEFAULT_ROLE_PATH, ManagedNames
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Credentials, Emulator
from tests.integration.aws.names import unique
from tests.places import at_home

MANAGED_TAGS = ManagedNames(at_home("i-0123456789abcdef0"), DEFAULT_ROLE_PATH).tags
READ_SOMETHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}],
}


def identity_with(emulator: Emulator, statement: dict[str, Any]) -> Credentials:
    """A new IAM user holding only `statement`, and its key."""
    iam, user = emulator.client("iam"), unique("adapter-user")
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture
def name() -> str:
    return unique("accessbroker-test")


@pytest.fixture
def role(iam: BotoIam, name: str) -> str:
    iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    return name


def test_put_invalid_policy_is_rejected(iam: BotoIam, role: str) -> None:
    # IAM's syntax check of a policy; FakeAws checks only that it is a JSON object, because
    # service tests arrange roles with stand-in policies that IAM would refuse.
    with pytest.raises(AwsRejected, match="PutRolePolicy failed: MalformedPolicyDocument"):
        iam.put_role_policy(role, "accessbroker-grants", json.dumps({"Statement": "nonsense"}))


def test_adding_a_role_waits_for_it_to_appear(iam_client: IAMClient, name: str) -> None:
    iam = BotoIam(iam_client, propagation_timeout=10.0)
    iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    # The role shows up only after the first attempts, as after CreateRole on real IAM.
    late_role = threading.Timer(
        0.5, iam.create_role, args=(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    )
    late_role.start()
    try:
        iam.add_role_to_instance_profile(name, name)
    finally:
        late_role.join()

    found = iam.get_instance_profile(name)
    assert found is not None
    assert found.role_names == (name,)


def test_a_policy_put_right_after_the_boundary_waits_for_iam_to_see_it(
    emulator: Emulator, name: str
) -> None:
    """IAM refuses the broker's policy on a role until it sees the role's boundary: right after
    the broker put it back, that AccessDenied is IAM's propagation, waited out; otherwise it is
    a refusal."""
    boundary, admin = emulator.permissions_boundary(), emulator.client("iam")
    admin.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST_POLICY)
    only_with_it = {"StringEquals": {"iam:PermissionsBoundary": boundary}}
    allowed = {"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "*"}
    iam = BotoIam(
        emulator.client("iam", identity_with(emulator, allowed | {"Condition": only_with_it})),
        propagation_timeout=10.0,
    )
    document = json.dumps(READ_SOMETHING)

    with pytest.raises(AwsRejected, match="PutRolePolicy failed: AccessDenied"):
        iam.put_role_policy(name, "accessbroker-grants", document)
    # The boundary shows up only after the first attempts, as IAM's would.
    late = threading.Timer(
        0.5,
        admin.put_role_permissions_boundary,
        kwargs={"RoleName": name, "PermissionsBoundary": boundary},
    )
    late.start()
    try:
        iam.put_role_policy(name, "accessbroker-grants", document, after_boundary=True)
    finally:
        late.join()

    assert admin.get_role_policy(RoleName=name, PolicyName="accessbroker-grants")
