"""BotoIam.managed_instances against the emulator: it reads every page of IAM's listings.

What counts as the broker's is the Iam port's contract (tests/contract).
"""

import pytest
from mypy_boto3_iam.client import IAMClient

from broker.adapters.aws import BotoIam
from broker.domain.naming import ManagedNames
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator
from tests.integration.aws.names import fresh_instance_id
from tests.places import HOME_REGION, at_home


@pytest.fixture(scope="module")
def raw(emulator: Emulator) -> IAMClient:
    return emulator.client("iam")


def make_role(raw: IAMClient, name: str, path: str, tags: dict[str, str]) -> None:
    raw.create_role(
        RoleName=name,
        Path=path,
        AssumeRolePolicyDocument=EC2_TRUST_POLICY,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def test_listing_follows_every_page(iam: BotoIam, raw: IAMClient, path: str) -> None:
    # moto pages ListRoles by 100 by default.
    instance_ids = {fresh_instance_id() for _ in range(105)}
    for instance_id in instance_ids:
        names = ManagedNames(at_home(instance_id), path)
        make_role(raw, names.role_name, path, names.tags)

    assert iam.managed_instances(path) == dict.fromkeys(instance_ids, HOME_REGION)
