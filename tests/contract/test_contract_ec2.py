"""The Ec2 port: instances as EC2 shows them, and their instance profile associations."""

import uuid

import pytest

from broker.domain.convergence import ProfileInfo
from broker.domain.errors import AwsRejected, AwsUnavailable, InstanceNotFound
from broker.domain.naming import DEFAULT_ROLE_PATH
from broker.domain.trust import EC2_TRUST_POLICY
from broker.service.ports import InstanceInfo
from tests.contract.aws_worlds import MANAGED_TAGS, AwsWorld, unique


def new_profile(aws: AwsWorld) -> ProfileInfo:
    """A managed profile holding a managed role of the same name."""
    name = unique("profile")
    aws.iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    aws.iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    aws.iam.add_role_to_instance_profile(name, name)
    profile = aws.iam.get_instance_profile(name)
    assert profile is not None
    return profile


def test_running_instance_is_found_with_its_tags(aws: AwsWorld) -> None:
    instance_id = aws.run_instance(tags={"team": "data"})

    assert aws.ec2.find_instance(instance_id) == InstanceInfo(instance_id, {"team": "data"})
    assert not aws.ec2.is_terminated(instance_id)


@pytest.mark.parametrize("instance_id", ["i-0123456789abcdef0", "i-bogus"])
def test_unknown_instance_does_not_exist(aws: AwsWorld, instance_id: str) -> None:
    assert aws.ec2.find_instance(instance_id) is None


@pytest.mark.parametrize("instance_id", ["i-0123456789abcdef0", "i-bogus"])
def test_unknown_instance_is_not_known_to_be_terminated(aws: AwsWorld, instance_id: str) -> None:
    # A wrong region or account would look the same: only EC2's word that it ended counts.
    assert not aws.ec2.is_terminated(instance_id)


def test_terminated_instance_does_not_exist(aws: AwsWorld) -> None:
    instance_id = aws.run_instance()
    aws.terminate(instance_id)

    assert aws.ec2.find_instance(instance_id) is None
    assert aws.ec2.is_terminated(instance_id)


def test_instance_without_a_profile_has_no_association(aws: AwsWorld) -> None:
    assert aws.ec2.get_association(aws.run_instance()) is None


def test_association_lifecycle(aws: AwsWorld) -> None:
    instance_id = aws.run_instance()
    profile = new_profile(aws)

    associated = aws.ec2.associate(instance_id, profile.name)

    assert associated.instance_id == instance_id
    assert associated.profile_arn == profile.arn
    assert aws.ec2.get_association(instance_id) == associated
    # DescribeInstances names the associated profile too.
    assert aws.ec2.find_instance(instance_id) == InstanceInfo(instance_id, {}, profile.arn)

    aws.ec2.disassociate(associated.association_id)
    assert aws.ec2.get_association(instance_id) is None
    assert aws.ec2.find_instance(instance_id) == InstanceInfo(instance_id, {}, "")
    aws.ec2.disassociate(associated.association_id)


def test_associating_the_same_profile_again_returns_the_existing_association(
    aws: AwsWorld,
) -> None:
    instance_id = aws.run_instance()
    profile = new_profile(aws)
    first = aws.ec2.associate(instance_id, profile.name)

    assert aws.ec2.associate(instance_id, profile.name) == first


def test_associating_while_another_profile_is_associated_is_rejected(aws: AwsWorld) -> None:
    instance_id = aws.run_instance()
    aws.ec2.associate(instance_id, new_profile(aws).name)

    with pytest.raises(AwsRejected, match="AssociateIamInstanceProfile failed: IncorrectState"):
        aws.ec2.associate(instance_id, new_profile(aws).name)


def test_associating_with_an_unknown_instance_is_not_found(aws: AwsWorld) -> None:
    with pytest.raises(InstanceNotFound):
        aws.ec2.associate("i-0123456789abcdef0", new_profile(aws).name)


def test_associating_a_profile_that_never_appears_is_unavailable(aws: AwsWorld) -> None:
    # Unavailable, not rejected: right after IAM creates a profile, EC2 may not see it yet.
    with pytest.raises(AwsUnavailable, match="did not propagate"):
        aws.ec2.associate(aws.run_instance(), f"accessbroker-never-created-{uuid.uuid4().hex}")


def test_the_instances_holding_a_profile_are_found_across_the_region(aws: AwsWorld) -> None:
    profile = new_profile(aws)
    first, second, bystander = (aws.run_instance() for _ in range(3))
    aws.ec2.associate(first, profile.name)
    aws.ec2.associate(second, profile.name)

    assert aws.ec2.instances_holding(profile.arn) == {first, second}
    assert bystander not in aws.ec2.instances_holding(profile.arn)
    assert aws.ec2.instances_holding(profile.arn + "-nobody") == set()
