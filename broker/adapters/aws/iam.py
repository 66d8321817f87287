"""The Iam port over boto3: the broker's roles, inline policies and instance profiles."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from botocore.exceptions import ClientError

from broker.adapters.aws.calls import AwsAdapter, MaybeDone, Paging
from broker.adapters.aws.errors import error_code
from broker.adapters.aws.retry import Propagation
from broker.domain.convergence import ProfileInfo, RoleInfo
from broker.domain.drift import ListedRole
from broker.domain.errors import AwsUnavailable
from broker.domain.naming import (
    INSTANCE_TAG_KEY,
    NAME_PREFIX,
    REGION_TAG_KEY,
    is_adoptable,
    is_managed,
)
from broker.domain.quotas import AccountUsage
from broker.domain.validation import instance_id_problems

if TYPE_CHECKING:
    from mypy_boto3_iam.client import IAMClient  # noqa: F401 (BotoIam's type argument)
    from mypy_boto3_iam.type_defs import (
        InstanceProfileTypeDef,
        PolicyDocumentTypeDef,
        RoleDetailTypeDef,
        RoleTypeDef,
        TagTypeDef,
    )

# IAM's answer for an absent role, profile or inline policy (and for one not yet propagated).
_NO_SUCH_ENTITY = "NoSuchEntity"


class BotoIam(AwsAdapter["IAMClient"]):
    MISSING = frozenset({_NO_SUCH_ENTITY})
    SERVICE = "iam"
    PAGING = Paging(token="Marker", more="IsTruncated")

    def get_role(self, name: str) -> RoleInfo | None:
        response = self._aws.call("GetRole", RoleName=name, none_if_missing=True)
        return None if response is None else _role_info(response["Role"])

    def create_role(
        self,
        name: str,
        path: str,
        trust_policy: str,
        tags: dict[str, str],
        permissions_boundary: str = "",
    ) -> RoleInfo:
        try:
            response = self._aws.call(
                "CreateRole",
                RoleName=name,
                Path=path,
                AssumeRolePolicyDocument=trust_policy,
                Tags=_tag_list(tags),
                **_boundary(permissions_boundary),
                maybe_done={"EntityAlreadyExists"},
            )
        except MaybeDone:
            return _already_created("role", self.get_role(name))
        return _role_info(response["Role"])

    def update_trust_policy(self, role_name: str, document: str) -> None:
        self._aws.call("UpdateAssumeRolePolicy", RoleName=role_name, PolicyDocument=document)

    def put_role_boundary(self, role_name: str, policy_arn: str) -> None:
        self._aws.call(
            "PutRolePermissionsBoundary", RoleName=role_name, PermissionsBoundary=policy_arn
        )

    def list_inline_policies(self, role_name: str) -> list[str]:
        names = self._aws.paginate(
            "ListRolePolicies", "PolicyNames", RoleName=role_name, empty_if_missing=True
        )
        return [str(name) for name in names]

    def list_attached_policies(self, role_name: str) -> list[str]:
        policies = self._aws.paginate(
            "ListAttachedRolePolicies",
            "AttachedPolicies",
            RoleName=role_name,
            empty_if_missing=True,
        )
        return [str(policy["PolicyArn"]) for policy in policies]

    def profiles_holding(self, role_name: str) -> list[str]:
        profiles = self._aws.paginate(
            "ListInstanceProfilesForRole",
            "InstanceProfiles",
            RoleName=role_name,
            empty_if_missing=True,
        )
        return [str(p["InstanceProfileName"]) for p in profiles]

    def detach_policy(self, role_name: str, policy_arn: str) -> None:
        self._aws.call(
            "DetachRolePolicy", RoleName=role_name, PolicyArn=policy_arn, none_if_missing=True
        )

    def delete_role(self, name: str) -> None:
        self._aws.call("DeleteRole", RoleName=name, none_if_missing=True)

    def get_role_policy(self, role_name: str, policy_name: str) -> dict[str, Any] | None:
        response = self._aws.call(
            "GetRolePolicy", RoleName=role_name, PolicyName=policy_name, none_if_missing=True
        )
        return None if response is None else _policy_dict(response["PolicyDocument"])

    def put_role_policy(
        self, role_name: str, policy_name: str, document: str, *, after_boundary: bool = False
    ) -> None:
        # The broker may write only on a role carrying its boundary: right after the boundary
        # was put, IAM may not see it yet and refuse. Otherwise AccessDenied is a refusal.
        waits = Propagation(
            _is_access_denied, f"IAM did not propagate the permissions boundary of role {role_name}"
        )
        self._aws.call(
            "PutRolePolicy",
            RoleName=role_name,
            PolicyName=policy_name,
            PolicyDocument=document,
            propagation=waits if after_boundary else None,
        )

    def delete_role_policy(self, role_name: str, policy_name: str) -> None:
        self._aws.call(
            "DeleteRolePolicy", RoleName=role_name, PolicyName=policy_name, none_if_missing=True
        )

    def get_instance_profile(self, name: str) -> ProfileInfo | None:
        response = self._aws.call(
            "GetInstanceProfile", InstanceProfileName=name, none_if_missing=True
        )
        return None if response is None else _profile_info(response["InstanceProfile"])

    def create_instance_profile(self, name: str, path: str, tags: dict[str, str]) -> ProfileInfo:
        try:
            response = self._aws.call(
                "CreateInstanceProfile",
                InstanceProfileName=name,
                Path=path,
                Tags=_tag_list(tags),
                maybe_done={"EntityAlreadyExists"},
            )
        except MaybeDone:
            return _already_created("instance profile", self.get_instance_profile(name))
        return _profile_info(response["InstanceProfile"])

    def add_role_to_instance_profile(self, profile_name: str, role_name: str) -> None:
        try:
            self._aws.call(
                "AddRoleToInstanceProfile",
                InstanceProfileName=profile_name,
                RoleName=role_name,
                # Right after CreateRole, IAM itself may not yet find the role: NoSuchEntity.
                propagation=Propagation(
                    _is_missing,
                    f"IAM did not propagate role {role_name} or instance profile {profile_name}",
                ),
                # A profile holds at most one role, so adding it twice fails with LimitExceeded.
                maybe_done={"LimitExceeded"},
            )
        except MaybeDone as refused:
            profile = self.get_instance_profile(profile_name)
            if profile is None or profile.role_names != (role_name,):
                raise refused.refusal() from refused.error

    def remove_role_from_instance_profile(self, profile_name: str, role_name: str) -> None:
        self._aws.call(
            "RemoveRoleFromInstanceProfile",
            InstanceProfileName=profile_name,
            RoleName=role_name,
            none_if_missing=True,
        )

    def delete_instance_profile(self, name: str) -> None:
        self._aws.call("DeleteInstanceProfile", InstanceProfileName=name, none_if_missing=True)

    def managed_instances(self, path: str) -> dict[str, str]:
        """Instances whose role or instance profile the broker made on `path` (named
        accessbroker-<instance id>, on exactly that path, tagged managed-by=accessbroker and with
        the matching instance-id tag), with the region tag's value. Listings omit tags, so each
        candidate's are read."""
        found: dict[str, str] = {}
        for name in self._role_names(path):
            _note_made_by_broker(found, name, self._role_tags(name))
        for name in self._profile_names(path):
            _note_made_by_broker(found, name, self._profile_tags(name))
        return found

    def list_broker_roles(self) -> dict[str, ListedRole]:
        # IAM cannot filter this listing by path or name: the account's roles are read in pages
        # of up to 1,000, with the policies, profiles and tags a drift pass compares.
        roles = self._aws.paginate(
            "GetAccountAuthorizationDetails", "RoleDetailList", Filter=["Role"], MaxItems=1000
        )
        return {
            role["RoleName"]: _listed_role(role)
            for role in roles
            if _instance_id_of(role["RoleName"]) is not None
        }

    def account_usage(self) -> AccountUsage:
        """The account's roles and instance profiles, and its quotas for them."""
        summary = self._aws.call("GetAccountSummary")["SummaryMap"]
        return AccountUsage(
            roles=int(summary["Roles"]),
            roles_quota=int(summary["RolesQuota"]),
            instance_profiles=int(summary["InstanceProfiles"]),
            instance_profiles_quota=int(summary["InstanceProfilesQuota"]),
        )

    def managed_policy(self, arn: str) -> dict[str, Any] | None:
        """The document of the managed policy's default version; None when there is none."""
        policy = self._aws.call("GetPolicy", PolicyArn=arn, none_if_missing=True)
        if policy is None:
            return None
        version = policy["Policy"]["DefaultVersionId"]
        answer = self._aws.call("GetPolicyVersion", PolicyArn=arn, VersionId=version)
        return _policy_dict(answer["PolicyVersion"]["Document"])

    def _role_names(self, path: str) -> list[str]:
        """Names of the form accessbroker-<instance id> among the roles on exactly `path`."""
        roles = self._aws.paginate("ListRoles", "Roles", PathPrefix=path)
        names = [r["RoleName"] for r in roles if r["Path"] == path]
        return [n for n in names if _instance_id_of(n) is not None]

    def _profile_names(self, path: str) -> list[str]:
        """Names of the form accessbroker-<instance id> among the profiles on exactly `path`."""
        profiles = self._aws.paginate("ListInstanceProfiles", "InstanceProfiles", PathPrefix=path)
        names = [p["InstanceProfileName"] for p in profiles if p["Path"] == path]
        return [n for n in names if _instance_id_of(n) is not None]

    def _role_tags(self, name: str) -> dict[str, str] | None:
        """The role's tags, or None when it went away since it was listed."""
        response = self._aws.call("ListRoleTags", RoleName=name, none_if_missing=True)
        return None if response is None else _tag_dict(response["Tags"])

    def _profile_tags(self, name: str) -> dict[str, str] | None:
        """The profile's tags, or None when it went away since it was listed."""
        # GetInstanceProfile returns the tags too (and moto lacks ListInstanceProfileTags).
        response = self._aws.call(
            "GetInstanceProfile", InstanceProfileName=name, none_if_missing=True
        )
        return None if response is None else _tag_dict(response["InstanceProfile"].get("Tags", []))


Created = TypeVar("Created", RoleInfo, ProfileInfo)


def _already_created(kind: str, found: Created | None) -> Created:
    """What a create found there: the broker's own (a retry, or another replica's identical
    step) or someone else's, as its `managed` flag says; the planner refuses the latter."""
    if found is None:
        raise AwsUnavailable(f"IAM reports the {kind} exists but does not return it yet")
    return found


class _Boundary(TypedDict, total=False):
    PermissionsBoundary: str


def _boundary(arn: str) -> _Boundary:
    return _Boundary(PermissionsBoundary=arn) if arn else _Boundary()


def _is_missing(error: BaseException) -> bool:
    return isinstance(error, ClientError) and error_code(error) == _NO_SUCH_ENTITY


def _is_access_denied(error: BaseException) -> bool:
    return isinstance(error, ClientError) and error_code(error) == "AccessDenied"


def _instance_id_of(name: str) -> str | None:
    """The instance id in a name of the broker's form accessbroker-<instance id>, else None."""
    if not name.startswith(NAME_PREFIX):
        return None
    instance_id = name.removeprefix(NAME_PREFIX)
    return None if instance_id_problems(instance_id) else instance_id


def _note_made_by_broker(found: dict[str, str], name: str, tags: dict[str, str] | None) -> None:
    """Adds the instance `name` is for, with its region tag, when the broker made it."""
    instance_id = _instance_id_of(name)
    if tags is None or not is_managed(tags) or tags.get(INSTANCE_TAG_KEY) != instance_id:
        return
    assert instance_id is not None, "the instance-id tag matched"
    found.setdefault(instance_id, tags.get(REGION_TAG_KEY, ""))


def _tag_list(tags: dict[str, str]) -> list[TagTypeDef]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _tag_dict(tags: list[TagTypeDef]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


def _role_info(role: RoleTypeDef | RoleDetailTypeDef) -> RoleInfo:
    trust, tags = role.get("AssumeRolePolicyDocument"), _tag_dict(role.get("Tags", []))
    return RoleInfo(
        name=role["RoleName"],
        arn=role["Arn"],
        managed=is_managed(tags),
        trust_policy=None if trust is None else _policy_dict(trust),
        adoptable=is_adoptable(tags),
        # GetRole and the account listing both show it; absent when the role has none.
        boundary=role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn", ""),
    )


def _listed_role(role: RoleDetailTypeDef) -> ListedRole:
    return ListedRole(
        role=_role_info(role),
        inline_policies={
            policy["PolicyName"]: _policy_dict(policy["PolicyDocument"])
            for policy in role.get("RolePolicyList", [])
        },
        attached_policies=tuple(
            policy["PolicyArn"] for policy in role.get("AttachedManagedPolicies", [])
        ),
        profiles=tuple(_profile_info(profile) for profile in role.get("InstanceProfileList", [])),
    )


def _profile_info(profile: InstanceProfileTypeDef) -> ProfileInfo:
    return ProfileInfo(
        name=profile["InstanceProfileName"],
        arn=profile["Arn"],
        role_names=tuple(role["RoleName"] for role in profile["Roles"]),
        managed=is_managed(_tag_dict(profile.get("Tags", []))),
    )


def _policy_dict(document: PolicyDocumentTypeDef) -> dict[str, Any]:
    # boto3 decodes the URL-encoded JSON into a dict, but leaves a string it could not decode.
    return json.loads(document) if isinstance(document, str) else dict(document)
