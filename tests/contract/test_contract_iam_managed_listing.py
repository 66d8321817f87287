"""The Iam port's managed_instance_ids: only what the broker made, on exactly its path, counts."""

import uuid

from broker.domain.naming import ManagedNames
from broker.domain.trust import EC2_TRUST_POLICY
from tests.contract.aws_worlds import AwsWorld
from tests.integration.aws.names import fresh_instance_id


def make_role(aws: AwsWorld, name: str, path: str, tags: dict[str, str]) -> None:
    aws.iam.create_role(name, path, EC2_TRUST_POLICY, tags)


def make_profile(aws: AwsWorld, name: str, path: str, tags: dict[str, str]) -> None:
    aws.iam.create_instance_profile(name, path, tags)


def test_roles_and_profiles_the_broker_made_are_found(aws: AwsWorld, path: str) -> None:
    with_role, with_profile_only = fresh_instance_id(), fresh_instance_id()
    for instance_id in (with_role, with_profile_only):
        names = ManagedNames(instance_id, path)
        make_profile(aws, names.profile_name, path, names.tags)
    make_role(
        aws, ManagedNames(with_role, path).role_name, path, ManagedNames(with_role, path).tags
    )

    assert aws.iam.managed_instance_ids(path) == {with_role, with_profile_only}


def test_look_alikes_are_not_found(aws: AwsWorld, path: str) -> None:
    untagged, elsewhere, other_tag, wrong_id, nested = (fresh_instance_id() for _ in range(5))
    make_role(aws, f"accessbroker-{untagged}", path, {})
    make_role(aws, f"accessbroker-{other_tag}", path, {"managed-by": "terraform"})
    make_role(
        aws,
        f"accessbroker-{elsewhere}",
        "/elsewhere/",
        ManagedNames(elsewhere, "/elsewhere/").tags,
    )
    make_role(aws, f"accessbroker-{wrong_id}", path, ManagedNames(fresh_instance_id(), path).tags)
    make_profile(aws, f"accessbroker-{nested}", f"{path}deeper/", ManagedNames(nested, path).tags)
    make_role(
        aws, f"accessbroker-test-{uuid.uuid4().hex[:8]}", path, {"managed-by": "accessbroker"}
    )
    # Named and tagged the broker's way, but for something that is not an instance id.
    not_an_instance = ManagedNames(f"test-{uuid.uuid4().hex[:8]}", path)
    make_role(aws, not_an_instance.role_name, path, not_an_instance.tags)

    assert aws.iam.managed_instance_ids(path) == set()
