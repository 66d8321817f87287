"""The bulk reads of a drift pass: IAM's listing of the roles bearing the broker's names, with
their policies and profiles, and EC2's description of many instances at once."""

import json

from broker.domain.drift import ListedRole
from broker.domain.naming import DEFAULT_ROLE_PATH, NAME_PREFIX
from broker.domain.trust import EC2_TRUST_POLICY
from tests.contract.aws_worlds import MANAGED_TAGS, POLICY, AwsWorld, unique
from tests.integration.aws.names import fresh_instance_id

GRANTS_POLICY = "accessbroker-grants"


def broker_name() -> str:
    """A name of the broker's form, for an instance id no other test uses."""
    return f"{NAME_PREFIX}{fresh_instance_id()}"


def test_a_broker_role_is_listed_with_its_policies_and_profiles(aws: AwsWorld) -> None:
    name = broker_name()
    aws.iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    aws.iam.put_role_policy(name, GRANTS_POLICY, json.dumps(POLICY))
    aws.put_policy_by_hand(name, "added-by-hand", POLICY)
    attached = aws.create_managed_policy()
    aws.attach_by_hand(name, attached)
    aws.iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    aws.iam.add_role_to_instance_profile(name, name)

    role, profile = aws.iam.get_role(name), aws.iam.get_instance_profile(name)
    assert role is not None and profile is not None and role.managed and profile.managed

    assert aws.iam.list_broker_roles()[name] == ListedRole(
        role=role,
        inline_policies={GRANTS_POLICY: POLICY, "added-by-hand": POLICY},
        attached_policies=(attached,),
        profiles=(profile,),
    )


def test_the_listing_shows_each_roles_boundary(aws: AwsWorld) -> None:
    """The drift screen finds a lost boundary without reading each role."""
    bounded, unbounded, boundary = broker_name(), broker_name(), aws.create_managed_policy()
    aws.iam.create_role(
        bounded, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS, permissions_boundary=boundary
    )
    aws.iam.create_role(unbounded, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)

    listed = aws.iam.list_broker_roles()

    assert (listed[bounded].role.boundary, listed[unbounded].role.boundary) == (boundary, "")


def test_a_role_of_another_bearing_the_brokers_name_is_listed_as_not_the_brokers(
    aws: AwsWorld,
) -> None:
    name = broker_name()
    aws.create_foreign_role(name, {"team": "data"})

    listed = aws.iam.list_broker_roles()[name]

    assert not listed.role.managed
    assert (listed.inline_policies, listed.attached_policies, listed.profiles) == ({}, (), ())


def test_roles_not_named_as_the_broker_names_them_are_left_out(aws: AwsWorld, role: str) -> None:
    listed = aws.iam.list_broker_roles()

    assert role not in listed
    assert all(name.startswith(NAME_PREFIX + "i-") for name in listed)


def test_many_instances_are_described_at_once(aws: AwsWorld) -> None:
    running, terminated, unknown = aws.run_instance(), aws.run_instance(), fresh_instance_id()
    aws.terminate(terminated)
    profile = unique("profile")
    aws.iam.create_role(profile, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    aws.iam.create_instance_profile(profile, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    aws.iam.add_role_to_instance_profile(profile, profile)
    association = aws.ec2.associate(running, profile)
    elsewhere = aws.run_instance()
    aws.ec2.associate(elsewhere, profile)

    seen = aws.ec2.describe_many([running, terminated, unknown])

    assert seen.existing == {running}
    assert seen.gone == {terminated}
    assert seen.associations == {running: association}


def test_a_disassociated_profile_is_not_current(aws: AwsWorld) -> None:
    instance_id = aws.run_instance()
    profile = unique("profile")
    aws.iam.create_role(profile, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    aws.iam.create_instance_profile(profile, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    aws.iam.add_role_to_instance_profile(profile, profile)
    aws.ec2.disassociate(aws.ec2.associate(instance_id, profile).association_id)

    assert aws.ec2.describe_many([instance_id]).associations == {}
