"""Names and tags of the AWS resources the broker manages for an instance."""

from dataclasses import dataclass

NAME_PREFIX = "accessbroker-"
POLICY_NAME = "accessbroker-grants"
MANAGED_BY_TAG = ("managed-by", "accessbroker")
INSTANCE_TAG_KEY = "accessbroker:instance-id"
DEFAULT_ROLE_PATH = "/accessbroker/"


@dataclass(frozen=True)
class ManagedNames:
    """The role and instance profile of one instance; both carry the same name, as the console's."""

    instance_id: str
    path: str

    @property
    def role_name(self) -> str:
        # Instance ids are at most 19 characters, so this stays within IAM's 64.
        return f"{NAME_PREFIX}{self.instance_id}"

    @property
    def profile_name(self) -> str:
        return self.role_name

    @property
    def policy_name(self) -> str:
        return POLICY_NAME

    @property
    def tags(self) -> dict[str, str]:
        return {MANAGED_BY_TAG[0]: MANAGED_BY_TAG[1], INSTANCE_TAG_KEY: self.instance_id}


def is_managed(tags: dict[str, str]) -> bool:
    return tags.get(MANAGED_BY_TAG[0]) == MANAGED_BY_TAG[1]
