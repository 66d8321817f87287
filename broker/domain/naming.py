"""Names and tags of the AWS resources the broker manages for an instance."""

from dataclasses import dataclass

from broker.domain.places import InstanceRef

NAME_PREFIX = "accessbroker-"
POLICY_NAME = "accessbroker-grants"
MANAGED_BY_TAG = ("managed-by", "accessbroker")
INSTANCE_TAG_KEY = "accessbroker:instance-id"
# The region of the instance a role or profile is for: IAM is one namespace per account, so an
# account's sweep of one region tells its own resources from those of its other regions by it.
REGION_TAG_KEY = "accessbroker:region"
DEFAULT_ROLE_PATH = "/accessbroker/"
# The tag the platform team puts on a role the broker may adopt (BROKER_FOREIGN_PROFILE=attach):
# the adoption policy lets the broker change only roles that carry it.
ADOPTABLE_TAG = ("accessbroker:adoptable", "true")


@dataclass(frozen=True)
class ManagedNames:
    """The role and instance profile of one instance; both carry the same name, as the console's."""

    instance: InstanceRef
    path: str
    # The permissions boundary the role carries: the ARN of the instance's account's
    # accessbroker-boundary (BROKER_PERMISSIONS_BOUNDARY_ARN); "" for none.
    boundary: str = ""

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id

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
        return {
            MANAGED_BY_TAG[0]: MANAGED_BY_TAG[1],
            INSTANCE_TAG_KEY: self.instance_id,
            REGION_TAG_KEY: self.instance.place.region,
        }


def is_managed(tags: dict[str, str]) -> bool:
    return tags.get(MANAGED_BY_TAG[0]) == MANAGED_BY_TAG[1]


def is_adoptable(tags: dict[str, str]) -> bool:
    return tags.get(ADOPTABLE_TAG[0]) == ADOPTABLE_TAG[1]
