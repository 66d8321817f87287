"""BotoIam.managed_instance_ids against the emulator: only what the broker made counts."""

import uuid

import pytest
from mypy_boto3_iam.client import IAMClient

from broker.adapters.aws import BotoIam
from broker.domain.naming import ManagedNames
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator
from tests.integration.aws.clients import admin_clients


def fresh_instance_id() -> str:
    return f"i-{uuid.uuid4().hex[:17]}"


@pytest.fixture
def path() -> str:
    """A path of the test's own: the emulator is shared by the whole session."""
    return f"/managed-{uuid.uuid4().hex[:8]}/"


@pytest.fixture(scope="module")
def raw(emulator: Emulator) -> IAMClient:
    return emulator.client("iam")


@pytest.fixture(scope="module")
def iam(emulator: Emulator) -> BotoIam:
    return BotoIam(admin_clients(emulator).iam, propagation_timeout=5.0)


def make_role(raw: IAMClient, name: str, path: str, tags: dict[str, str]) -> None:
    raw.create_role(
        RoleName=name,
        Path=path,
        AssumeRolePolicyDocument=EC2_TRUST_POLICY,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def make_profile(raw: IAMClient, name: str, path: str, tags: dict[str, str]) -> None:
    raw.create_instance_profile(
        InstanceProfileName=name, Path=path, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )


def test_roles_and_profiles_the_broker_made_are_found(
    iam: BotoIam, raw: IAMClient, path: str
) -> None:
    with_role, with_profile_only = fresh_instance_id(), fresh_instance_id()
    for instance_id in (with_role, with_profile_only):
        names = ManagedNames(instance_id, path)
        make_profile(raw, names.profile_name, path, names.tags)
    make_role(
        raw, ManagedNames(with_role, path).role_name, path, ManagedNames(with_role, path).tags
    )

    assert iam.managed_instance_ids(path) == {with_role, with_profile_only}


def test_look_alikes_are_not_found(iam: BotoIam, raw: IAMClient, path: str) -> None:
    untagged, elsewhere, other_tag, wrong_id, nested = (fresh_instance_id() for _ in range(5))
    make_role(raw, f"accessbroker-{untagged}", path, {})
    make_role(raw, f"accessbroker-{other_tag}", path, {"managed-by": "terraform"})
    make_role(
        raw,
        f"accessbroker-{elsewhere}",
        "/elsewhere/",
        ManagedNames(elsewhere, "/elsewhere/").tags,
    )
    make_role(raw, f"accessbroker-{wrong_id}", path, ManagedNames(fresh_instance_id(), path).tags)
    make_profile(raw, f"accessbroker-{nested}", f"{path}deeper/", ManagedNames(nested, path).tags)
    make_role(
        raw, f"accessbroker-test-{uuid.uuid4().hex[:8]}", path, {"managed-by": "accessbroker"}
    )

    assert iam.managed_instance_ids(path) == set()


def test_listing_follows_every_page(iam: BotoIam, raw: IAMClient, path: str) -> None:
    # moto pages ListRoles by 100 by default.
    instance_ids = {fresh_instance_id() for _ in range(105)}
    for instance_id in instance_ids:
        names = ManagedNames(instance_id, path)
        make_role(raw, names.role_name, path, names.tags)

    assert iam.managed_instance_ids(path) == instance_ids
