"""BotoIam's view of everything on a role besides the broker's own policy, against the emulator.

Drift repair reads a role's other inline policies, its attached managed policies and its trust
policy, and removes or restores them; these are the calls it makes.
"""

import json
import uuid

import pytest
from mypy_boto3_iam.client import IAMClient

from broker.adapters.aws import BotoIam
from broker.domain.errors import AwsRejected
from broker.domain.naming import DEFAULT_ROLE_PATH
from broker.domain.trust import EC2_TRUST_POLICY, trusts_only_ec2
from broker.sandbox import Emulator
from tests.integration.aws.test_aws_iam_adapter import MANAGED_TAGS, POLICY, make_iam

# EC2, and also anyone in another account: what a hand edit to "let the CI in too" looks like.
WIDER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        },
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
            "Action": "sts:AssumeRole",
        },
    ],
}


@pytest.fixture(scope="module")
def iam(emulator: Emulator) -> BotoIam:
    return make_iam(emulator, propagation_timeout=5.0)


@pytest.fixture(scope="module")
def raw(emulator: Emulator) -> IAMClient:
    """IAM as an operator would use it, behind the broker's back."""
    return emulator.client("iam")


def unique(what: str) -> str:
    """A fresh name: the emulator is shared by the whole session."""
    return f"accessbroker-test-{what}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def role(iam: BotoIam) -> str:
    name = unique("role")
    iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    return name


@pytest.fixture
def managed_policy(raw: IAMClient) -> str:
    """The ARN of a new customer managed policy."""
    created = raw.create_policy(PolicyName=unique("policy"), PolicyDocument=json.dumps(POLICY))
    return created["Policy"]["Arn"]


def test_inline_policies_are_listed_by_name_ours_and_others(
    iam: BotoIam, raw: IAMClient, role: str
) -> None:
    assert iam.list_inline_policies(role) == []

    iam.put_role_policy(role, "accessbroker-grants", json.dumps(POLICY))
    raw.put_role_policy(
        RoleName=role, PolicyName="added-by-hand", PolicyDocument=json.dumps(POLICY)
    )

    assert sorted(iam.list_inline_policies(role)) == ["accessbroker-grants", "added-by-hand"]


def test_attached_managed_policies_are_listed_by_arn(
    iam: BotoIam, raw: IAMClient, role: str, managed_policy: str
) -> None:
    assert iam.list_attached_policies(role) == []

    raw.attach_role_policy(RoleName=role, PolicyArn=managed_policy)

    assert iam.list_attached_policies(role) == [managed_policy]
    assert iam.list_inline_policies(role) == [], "a managed policy is not an inline one"


def test_detached_policy_is_gone_and_detaching_again_is_done(
    iam: BotoIam, raw: IAMClient, role: str, managed_policy: str
) -> None:
    raw.attach_role_policy(RoleName=role, PolicyArn=managed_policy)

    iam.detach_policy(role, managed_policy)

    assert iam.list_attached_policies(role) == []
    assert raw.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    iam.detach_policy(role, managed_policy)


def test_detaching_from_a_missing_role_is_done(iam: BotoIam, managed_policy: str) -> None:
    iam.detach_policy(unique("missing"), managed_policy)


def test_listing_the_policies_of_a_missing_role_finds_none(iam: BotoIam) -> None:
    missing = unique("missing")

    assert iam.list_inline_policies(missing) == []
    assert iam.list_attached_policies(missing) == []


def test_a_role_reads_with_its_trust_policy(iam: BotoIam, role: str) -> None:
    found = iam.get_role(role)

    assert found is not None
    assert found.trust_policy == json.loads(EC2_TRUST_POLICY)


def test_updated_trust_policy_reads_back_and_restores(
    iam: BotoIam, raw: IAMClient, role: str
) -> None:
    iam.update_trust_policy(role, json.dumps(WIDER_TRUST))

    widened = iam.get_role(role)
    assert widened is not None and widened.trust_policy == WIDER_TRUST
    assert not trusts_only_ec2(widened.trust_policy)

    iam.update_trust_policy(role, EC2_TRUST_POLICY)

    restored = iam.get_role(role)
    assert restored is not None and restored.trust_policy is not None
    assert trusts_only_ec2(restored.trust_policy)
    assert raw.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"] == json.loads(
        EC2_TRUST_POLICY
    )


def test_updating_the_trust_policy_of_a_missing_role_is_rejected(iam: BotoIam) -> None:
    with pytest.raises(AwsRejected, match="UpdateAssumeRolePolicy failed: NoSuchEntity"):
        iam.update_trust_policy(unique("missing"), EC2_TRUST_POLICY)


def test_a_role_created_with_a_permissions_boundary_has_it(
    iam: BotoIam, raw: IAMClient, managed_policy: str
) -> None:
    name = unique("bounded")

    created = iam.create_role(
        name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS, permissions_boundary=managed_policy
    )

    assert created.managed
    boundary = raw.get_role(RoleName=name)["Role"].get("PermissionsBoundary", {})
    assert boundary.get("PermissionsBoundaryArn") == managed_policy


def test_a_role_created_without_a_boundary_has_none(iam: BotoIam, raw: IAMClient) -> None:
    name = unique("unbounded")

    iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)

    assert "PermissionsBoundary" not in raw.get_role(RoleName=name)["Role"]


def test_a_malformed_permissions_boundary_is_rejected_and_creates_no_role(iam: BotoIam) -> None:
    name = unique("badly-bounded")

    with pytest.raises(AwsRejected, match="CreateRole failed"):
        iam.create_role(
            name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS, permissions_boundary="nope"
        )

    assert iam.get_role(name) is None


def test_the_profiles_holding_a_role_are_listed(iam: BotoIam, role: str) -> None:
    profile = unique("profile")
    iam.create_instance_profile(profile, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    assert iam.profiles_holding(role) == []

    iam.add_role_to_instance_profile(profile, role)

    assert iam.profiles_holding(role) == [profile]
    assert iam.profiles_holding(unique("missing")) == []
