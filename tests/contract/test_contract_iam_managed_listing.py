"""The Iam port's managed_instances: only what the broker made, on exactly its path, counts,
with the region its tags name."""

import uuid

from broker.domain.naming import REGION_TAG_KEY, ManagedNames
from broker.domain.places import HOME_ACCOUNT, InstanceRef, Place
from broker.domain.trust import EC2_TRUST_POLICY
from tests.contract.aws_worlds import AwsWorld
from tests.integration.aws.names import fresh_instance_id
from tests.places import HOME_REGION, at_home


def make_role(aws: AwsWorld, name: str, path: str, tags: dict[str, str]) -> None:
    aws.iam.create_role(name, path, EC2_TRUST_POLICY, tags)


def make_profile(aws: AwsWorld, name: str, path: str, tags: dict[str, str]) -> None:
    aws.iam.create_instance_profile(name, path, tags)


def test_roles_and_profiles_the_broker_made_are_found(aws: AwsWorld, path: str) -> None:
    with_role, with_profile_only = fresh_instance_id(), fresh_instance_id()
    for instance_id in (with_role, with_profile_only):
        names = ManagedNames(at_home(instance_id), path)
        make_profile(aws, names.profile_name, path, names.tags)
    make_role(
        aws,
        ManagedNames(at_home(with_role), path).role_name,
        path,
        ManagedNames(at_home(with_role), path).tags,
    )

    assert aws.iam.managed_instances(path) == {
        with_role: HOME_REGION,
        with_profile_only: HOME_REGION,
    }


def test_each_is_found_with_the_region_its_tags_name(aws: AwsWorld, path: str) -> None:
    in_europe, from_before_regions = fresh_instance_id(), fresh_instance_id()
    european = ManagedNames(InstanceRef(Place(HOME_ACCOUNT, "eu-west-1"), in_europe), path)
    make_role(aws, european.role_name, path, european.tags)
    # Made by a broker from before regions: its tags name none.
    old = ManagedNames(at_home(from_before_regions), path)
    old_tags = {key: value for key, value in old.tags.items() if key != REGION_TAG_KEY}
    make_role(aws, old.role_name, path, old_tags)
    make_profile(aws, old.profile_name, path, old_tags)

    assert aws.iam.managed_instances(path) == {in_europe: "eu-west-1", from_before_regions: ""}


def test_look_alikes_are_not_found(aws: AwsWorld, path: str) -> None:
    untagged, elsewhere, other_tag, wrong_id, nested = (fresh_instance_id() for _ in range(5))
    make_role(aws, f"accessbroker-{untagged}", path, {})
    make_role(aws, f"accessbroker-{other_tag}", path, {"managed-by": "terraform"})
    make_role(
        aws,
        f"accessbroker-{elsewhere}",
        "/elsewhere/",
        ManagedNames(at_home(elsewhere), "/elsewhere/").tags,
    )
    make_role(
        aws, f"accessbroker-{wrong_id}", path, ManagedNames(at_home(fresh_instance_id()), path).tags
    )
    make_profile(
        aws, f"accessbroker-{nested}", f"{path}deeper/", ManagedNames(at_home(nested), path).tags
    )
    make_role(
        aws, f"accessbroker-test-{uuid.uuid4().hex[:8]}", path, {"managed-by": "accessbroker"}
    )
    # Named and tagged the broker's way, but for something that is not an instance id.
    not_an_instance = ManagedNames(at_home(f"test-{uuid.uuid4().hex[:8]}"), path)
    make_role(aws, not_an_instance.role_name, path, not_an_instance.tags)

    assert aws.iam.managed_instances(path) == {}
