"""Names and tags of the resources the broker manages."""

import re

import pytest

from broker.domain.naming import ManagedNames, is_managed
from broker.domain.places import InstanceRef, Place
from tests.places import at_home

ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)


@pytest.mark.parametrize("instance_id", ["i-01234567", "i-0123456789abcdef0"])
def test_role_and_profile_share_a_valid_name(instance_id: str) -> None:
    names = ManagedNames(at_home(instance_id), "/accessbroker/")
    assert names.role_name == f"accessbroker-{instance_id}"
    assert names.profile_name == names.role_name
    assert ROLE_NAME.fullmatch(names.role_name)
    assert names.policy_name == "accessbroker-grants"


def test_tags_mark_the_resources_as_managed_and_name_the_instance_and_its_region() -> None:
    names = ManagedNames(InstanceRef(Place("222222222222", "eu-west-1"), "i-01234567"), "/ab/")
    assert names.tags == {
        "managed-by": "accessbroker",
        "accessbroker:instance-id": "i-01234567",
        "accessbroker:region": "eu-west-1",
    }
    assert is_managed(names.tags)


@pytest.mark.parametrize(
    "tags",
    [{}, {"managed-by": "terraform"}, {"Managed-By": "accessbroker"}, {"owner": "accessbroker"}],
)
def test_anything_else_is_unmanaged(tags: dict[str, str]) -> None:
    assert not is_managed(tags)
