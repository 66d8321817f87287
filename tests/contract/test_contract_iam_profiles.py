"""The Iam port's instance profiles: created, read (someone else's too), the one role they hold,
the profiles that hold a role, deleted."""

import pytest

from broker.domain.errors import AwsQuotaExceeded, AwsRejected, AwsUnavailable
from broker.domain.naming import DEFAULT_ROLE_PATH
from broker.domain.trust import EC2_TRUST_POLICY
from tests.contract.aws_worlds import MANAGED_TAGS, AwsWorld, unique


@pytest.fixture
def name() -> str:
    return unique("profile")


def test_get_instance_profile_of_a_missing_profile_is_none(aws: AwsWorld, name: str) -> None:
    assert aws.iam.get_instance_profile(name) is None


def test_created_profile_is_managed_and_empty(aws: AwsWorld, name: str) -> None:
    created = aws.iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    assert created.name == name
    assert created.arn == f"arn:aws:iam::123456789012:instance-profile{DEFAULT_ROLE_PATH}{name}"
    assert created.role_names == ()
    assert created.managed
    assert aws.iam.get_instance_profile(name) == created


def test_profile_without_the_managed_tag_reads_as_unmanaged(aws: AwsWorld, name: str) -> None:
    aws.create_foreign_profile(name)

    found = aws.iam.get_instance_profile(name)

    assert found is not None
    assert not found.managed


def test_creating_a_managed_profile_again_returns_it(aws: AwsWorld, role: str) -> None:
    created = aws.iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    assert aws.iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS) == created


def test_creating_a_profile_someone_else_made_returns_it_unmanaged(
    aws: AwsWorld, name: str
) -> None:
    aws.create_foreign_profile(name)

    found = aws.iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    assert found == aws.iam.get_instance_profile(name)
    assert not found.managed


def test_adding_the_role_twice_is_done(aws: AwsWorld, role: str) -> None:
    aws.iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    aws.iam.add_role_to_instance_profile(role, role)
    aws.iam.add_role_to_instance_profile(role, role)

    found = aws.iam.get_instance_profile(role)
    assert found is not None
    assert found.role_names == (role,)


def test_adding_a_second_role_is_rejected(aws: AwsWorld, role: str) -> None:
    aws.iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    aws.iam.add_role_to_instance_profile(role, role)
    other = f"{role}-other"
    aws.iam.create_role(other, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)

    # IAM's LimitExceeded, which the broker reports as a quota (errors.translate).
    with pytest.raises(AwsQuotaExceeded, match="AddRoleToInstanceProfile failed: LimitExceeded"):
        aws.iam.add_role_to_instance_profile(role, other)

    found = aws.iam.get_instance_profile(role)
    assert found is not None
    assert found.role_names == (role,)


def test_adding_a_role_that_never_appears_is_unavailable(aws: AwsWorld, name: str) -> None:
    aws.iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    # Unavailable, not rejected: right after CreateRole, IAM may not find the role yet.
    with pytest.raises(AwsUnavailable, match="did not propagate"):
        aws.iam.add_role_to_instance_profile(name, f"{name}-never-created")


def test_adding_to_a_profile_that_never_appears_is_unavailable(aws: AwsWorld, role: str) -> None:
    with pytest.raises(AwsUnavailable, match="did not propagate"):
        aws.iam.add_role_to_instance_profile(f"{role}-never-created", role)


def test_removed_role_leaves_the_profile_empty(aws: AwsWorld, role: str) -> None:
    aws.iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    aws.iam.add_role_to_instance_profile(role, role)

    aws.iam.remove_role_from_instance_profile(role, role)

    found = aws.iam.get_instance_profile(role)
    assert found is not None
    assert found.role_names == ()


def test_removing_from_a_missing_profile_or_a_missing_role_is_done(
    aws: AwsWorld, role: str, name: str
) -> None:
    aws.iam.remove_role_from_instance_profile(f"{name}-no-profile", role)
    aws.iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    aws.iam.remove_role_from_instance_profile(role, f"{name}-no-role")


def test_deleted_profile_is_gone_and_deleting_again_is_done(aws: AwsWorld, name: str) -> None:
    aws.iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    aws.iam.delete_instance_profile(name)
    assert aws.iam.get_instance_profile(name) is None

    aws.iam.delete_instance_profile(name)


def test_deleting_a_profile_that_holds_a_role_is_rejected(aws: AwsWorld, role: str) -> None:
    aws.iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    aws.iam.add_role_to_instance_profile(role, role)

    with pytest.raises(AwsRejected, match="DeleteInstanceProfile failed: DeleteConflict"):
        aws.iam.delete_instance_profile(role)

    assert aws.iam.get_instance_profile(role) is not None


def test_the_profiles_holding_a_role_are_listed(aws: AwsWorld, role: str) -> None:
    profile = unique("profile")
    aws.iam.create_instance_profile(profile, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    assert aws.iam.profiles_holding(role) == []

    aws.iam.add_role_to_instance_profile(profile, role)

    assert aws.iam.profiles_holding(role) == [profile]
    assert aws.iam.profiles_holding(unique("missing")) == []
