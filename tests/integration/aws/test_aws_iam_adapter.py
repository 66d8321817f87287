"""BotoIam against the emulator over HTTP, with IAM authorization enforced."""

import json
import threading
import uuid

import pytest
from mypy_boto3_iam.type_defs import TagTypeDef

from broker.adapters.aws import BotoIam
from broker.domain.errors import AwsRejected, AwsUnavailable, ForeignRole
from broker.domain.naming import DEFAULT_ROLE_PATH, ManagedNames
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator
from tests.integration.aws.clients import admin_clients

MANAGED_TAGS = ManagedNames("i-0123456789abcdef0", DEFAULT_ROLE_PATH).tags
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/p*"}],
}


def make_iam(emulator: Emulator, propagation_timeout: float) -> BotoIam:
    return BotoIam(admin_clients(emulator).iam, propagation_timeout=propagation_timeout)


@pytest.fixture(scope="module")
def iam(emulator: Emulator) -> BotoIam:
    return make_iam(emulator, propagation_timeout=5.0)


@pytest.fixture
def name() -> str:
    return f"accessbroker-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def role(iam: BotoIam, name: str) -> str:
    iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    return name


def test_get_role_of_a_missing_role_is_none(iam: BotoIam, name: str) -> None:
    assert iam.get_role(name) is None


def test_created_role_is_managed_and_readable(iam: BotoIam, name: str) -> None:
    created = iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)

    assert created.name == name
    assert created.arn == f"arn:aws:iam::123456789012:role{DEFAULT_ROLE_PATH}{name}"
    assert created.managed
    assert iam.get_role(name) == created


@pytest.mark.parametrize("tags", [[], [{"Key": "managed-by", "Value": "terraform"}]])
def test_role_without_the_managed_tag_reads_as_unmanaged(
    iam: BotoIam, emulator: Emulator, name: str, tags: list[TagTypeDef]
) -> None:
    emulator.client("iam").create_role(
        RoleName=name, AssumeRolePolicyDocument=EC2_TRUST_POLICY, Tags=tags
    )

    found = iam.get_role(name)

    assert found is not None
    assert not found.managed


def test_creating_a_managed_role_again_returns_it(iam: BotoIam, role: str) -> None:
    again = iam.create_role(role, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)

    assert again == iam.get_role(role)
    assert again.managed


def test_creating_a_role_someone_else_made_is_refused(
    emulator: Emulator, iam: BotoIam, name: str
) -> None:
    emulator.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST_POLICY)

    with pytest.raises(ForeignRole, match=name):
        iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)


def test_creating_a_managed_profile_again_returns_it(iam: BotoIam, role: str) -> None:
    created = iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    assert iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS) == created


def test_creating_a_profile_someone_else_made_is_refused(
    emulator: Emulator, iam: BotoIam, name: str
) -> None:
    emulator.client("iam").create_instance_profile(InstanceProfileName=name)

    with pytest.raises(ForeignRole, match=name):
        iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)


def test_deleted_role_is_gone_and_deleting_again_is_done(iam: BotoIam, role: str) -> None:
    iam.delete_role(role)
    assert iam.get_role(role) is None

    iam.delete_role(role)


def test_inline_policy_lifecycle(iam: BotoIam, role: str) -> None:
    assert iam.get_role_policy(role, "accessbroker-grants") is None

    iam.put_role_policy(role, "accessbroker-grants", json.dumps(POLICY))
    assert iam.get_role_policy(role, "accessbroker-grants") == POLICY

    iam.delete_role_policy(role, "accessbroker-grants")
    assert iam.get_role_policy(role, "accessbroker-grants") is None
    iam.delete_role_policy(role, "accessbroker-grants")


def test_inline_policy_of_a_missing_role_is_none_and_deleting_it_is_done(
    iam: BotoIam, name: str
) -> None:
    assert iam.get_role_policy(name, "accessbroker-grants") is None
    iam.delete_role_policy(name, "accessbroker-grants")


def test_put_invalid_policy_is_rejected(iam: BotoIam, role: str) -> None:
    with pytest.raises(AwsRejected, match="PutRolePolicy failed: MalformedPolicyDocument"):
        iam.put_role_policy(role, "accessbroker-grants", json.dumps({"Statement": "nonsense"}))


def test_get_instance_profile_of_a_missing_profile_is_none(iam: BotoIam, name: str) -> None:
    assert iam.get_instance_profile(name) is None


def test_created_profile_is_managed_and_empty(iam: BotoIam, name: str) -> None:
    created = iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    assert created.name == name
    assert created.arn == f"arn:aws:iam::123456789012:instance-profile{DEFAULT_ROLE_PATH}{name}"
    assert created.role_names == ()
    assert created.managed
    assert iam.get_instance_profile(name) == created


def test_profile_without_the_managed_tag_reads_as_unmanaged(
    iam: BotoIam, emulator: Emulator, name: str
) -> None:
    emulator.client("iam").create_instance_profile(InstanceProfileName=name)

    found = iam.get_instance_profile(name)

    assert found is not None
    assert not found.managed


def test_adding_the_role_twice_is_done(iam: BotoIam, role: str) -> None:
    iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    iam.add_role_to_instance_profile(role, role)
    iam.add_role_to_instance_profile(role, role)

    found = iam.get_instance_profile(role)
    assert found is not None
    assert found.role_names == (role,)


def test_adding_a_second_role_is_rejected(iam: BotoIam, role: str, name: str) -> None:
    iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    iam.add_role_to_instance_profile(role, role)
    other = f"{name}-other"
    iam.create_role(other, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)

    with pytest.raises(AwsRejected, match="AddRoleToInstanceProfile failed: LimitExceeded"):
        iam.add_role_to_instance_profile(role, other)


def test_adding_a_role_waits_for_it_to_appear(emulator: Emulator, name: str) -> None:
    iam = make_iam(emulator, propagation_timeout=10.0)
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


def test_adding_a_role_that_never_appears_is_unavailable(emulator: Emulator, name: str) -> None:
    iam = make_iam(emulator, propagation_timeout=0.3)
    iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    with pytest.raises(AwsUnavailable, match="did not propagate"):
        iam.add_role_to_instance_profile(name, f"{name}-never-created")


def test_removed_role_leaves_the_profile_empty(iam: BotoIam, role: str) -> None:
    iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    iam.add_role_to_instance_profile(role, role)

    iam.remove_role_from_instance_profile(role, role)

    found = iam.get_instance_profile(role)
    assert found is not None
    assert found.role_names == ()


def test_removing_from_a_missing_profile_or_a_missing_role_is_done(
    iam: BotoIam, role: str, name: str
) -> None:
    iam.remove_role_from_instance_profile(f"{name}-no-profile", role)
    iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    iam.remove_role_from_instance_profile(role, f"{name}-no-role")


def test_deleted_profile_is_gone_and_deleting_again_is_done(iam: BotoIam, name: str) -> None:
    iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)

    iam.delete_instance_profile(name)
    assert iam.get_instance_profile(name) is None

    iam.delete_instance_profile(name)


def test_deleting_a_role_still_in_a_profile_is_rejected(iam: BotoIam, role: str) -> None:
    iam.create_instance_profile(role, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    iam.add_role_to_instance_profile(role, role)

    with pytest.raises(AwsRejected, match="DeleteRole failed: DeleteConflict"):
        iam.delete_role(role)
