"""The Iam port's roles: created, read (someone else's too), their trust policy, deleted."""

import json

import pytest

from broker.domain.errors import AwsRejected
from broker.domain.naming import DEFAULT_ROLE_PATH
from broker.domain.trust import EC2_TRUST_POLICY, trusts_only_ec2
from tests.contract.aws_worlds import MANAGED_TAGS, POLICY, AwsWorld, unique

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


@pytest.fixture
def name() -> str:
    return unique("role")


def test_get_role_of_a_missing_role_is_none(aws: AwsWorld, name: str) -> None:
    assert aws.iam.get_role(name) is None


def test_created_role_is_managed_and_readable(aws: AwsWorld, name: str) -> None:
    created = aws.iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)

    assert created.name == name
    assert created.arn == f"arn:aws:iam::123456789012:role{DEFAULT_ROLE_PATH}{name}"
    assert created.managed
    assert aws.iam.get_role(name) == created


@pytest.mark.parametrize("tags", [{}, {"managed-by": "terraform"}], ids=["untagged", "terraform"])
def test_role_without_the_managed_tag_reads_as_unmanaged(
    aws: AwsWorld, name: str, tags: dict[str, str]
) -> None:
    aws.create_foreign_role(name, tags)

    found = aws.iam.get_role(name)

    assert found is not None
    assert not found.managed


def test_creating_a_managed_role_again_returns_it(aws: AwsWorld, role: str) -> None:
    again = aws.iam.create_role(role, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)

    assert again == aws.iam.get_role(role)
    assert again.managed


def test_creating_a_role_someone_else_made_returns_it_unmanaged(aws: AwsWorld, name: str) -> None:
    aws.create_foreign_role(name, {})

    found = aws.iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)

    assert found == aws.iam.get_role(name)
    assert not found.managed, "whose it is, the planner judges (require_managed)"


def test_deleted_role_is_gone_and_deleting_again_is_done(aws: AwsWorld, role: str) -> None:
    aws.iam.delete_role(role)
    assert aws.iam.get_role(role) is None

    aws.iam.delete_role(role)


def test_deleting_a_role_still_in_a_profile_is_rejected(aws: AwsWorld, role: str) -> None:
    aws.iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    aws.iam.add_role_to_instance_profile(role, role)

    with pytest.raises(AwsRejected, match="DeleteRole failed: DeleteConflict"):
        aws.iam.delete_role(role)


def test_deleting_a_role_that_still_has_a_policy_is_rejected(aws: AwsWorld, role: str) -> None:
    aws.iam.put_role_policy(role, "accessbroker-grants", json.dumps(POLICY))

    with pytest.raises(AwsRejected, match="DeleteRole failed: DeleteConflict"):
        aws.iam.delete_role(role)

    assert aws.iam.get_role(role) is not None


def test_a_role_reads_with_its_trust_policy(aws: AwsWorld, role: str) -> None:
    found = aws.iam.get_role(role)

    assert found is not None
    assert found.trust_policy == json.loads(EC2_TRUST_POLICY)


def test_updated_trust_policy_reads_back_and_restores(aws: AwsWorld, role: str) -> None:
    aws.iam.update_trust_policy(role, json.dumps(WIDER_TRUST))

    widened = aws.iam.get_role(role)
    assert widened is not None and widened.trust_policy == WIDER_TRUST
    assert not trusts_only_ec2(widened.trust_policy)

    aws.iam.update_trust_policy(role, EC2_TRUST_POLICY)

    restored = aws.iam.get_role(role)
    assert restored is not None and restored.trust_policy is not None
    assert trusts_only_ec2(restored.trust_policy)
    assert aws.trust_policy(role) == json.loads(EC2_TRUST_POLICY)


def test_updating_the_trust_policy_of_a_missing_role_is_rejected(aws: AwsWorld) -> None:
    with pytest.raises(AwsRejected, match="UpdateAssumeRolePolicy failed: NoSuchEntity"):
        aws.iam.update_trust_policy(unique("missing"), EC2_TRUST_POLICY)


def test_a_role_created_with_a_permissions_boundary_has_it(aws: AwsWorld) -> None:
    name, boundary = unique("bounded"), aws.create_managed_policy()

    created = aws.iam.create_role(
        name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS, permissions_boundary=boundary
    )

    assert created.managed
    assert aws.permissions_boundary(name) == boundary


def test_a_role_created_without_a_boundary_has_none(aws: AwsWorld) -> None:
    name = unique("unbounded")

    aws.iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)

    assert aws.permissions_boundary(name) == ""


def test_a_malformed_permissions_boundary_is_rejected_and_creates_no_role(aws: AwsWorld) -> None:
    name = unique("badly-bounded")

    with pytest.raises(AwsRejected, match="CreateRole failed"):
        aws.iam.create_role(
            name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS, permissions_boundary="nope"
        )

    assert aws.iam.get_role(name) is None


def test_a_roles_boundary_is_read_and_put_back(aws: AwsWorld) -> None:
    name, boundary = unique("rebounded"), aws.create_managed_policy()
    aws.iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    read_unbounded = aws.iam.get_role(name)

    aws.iam.put_role_boundary(name, boundary)

    assert read_unbounded is not None and read_unbounded.boundary == ""
    read_bounded = aws.iam.get_role(name)
    assert read_bounded is not None and read_bounded.boundary == boundary
    assert aws.permissions_boundary(name) == boundary


def test_putting_a_boundary_on_a_missing_role_is_rejected(aws: AwsWorld) -> None:
    with pytest.raises(AwsRejected, match="PutRolePermissionsBoundary failed: NoSuchEntity"):
        aws.iam.put_role_boundary(unique("missing"), aws.create_managed_policy())
