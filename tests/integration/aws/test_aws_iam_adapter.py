"""BotoIam against the emulator over HTTP: what the Iam port's contract (tests/contract) leaves
to the adapter, waiting out IAM's propagation and IAM's own validation."""

import json
import threading

import pytest
from mypy_boto3_iam.client import IAMClient

from broker.adapters.aws import BotoIam
from broker.domain.errors import AwsRejected
from broker.domain.naming import DEFAULT_ROLE_PATH, ManagedNames
from broker.domain.trust import EC2_TRUST_POLICY
from tests.integration.aws.names import unique
from tests.places import at_home

MANAGED_TAGS = ManagedNames(at_home("i-0123456789abcdef0"), DEFAULT_ROLE_PATH).tags


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
