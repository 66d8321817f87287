"""The Iam port over boto3: the broker's roles, inline policies and instance profiles."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from botocore.exceptions import ClientError

from broker.adapters.aws.errors import error_code, translated
from broker.adapters.aws.retry import Propagation, RetryingAdapter
from broker.domain.convergence import ProfileInfo, RoleInfo
from broker.domain.errors import AwsUnavailable, ForeignRole
from broker.domain.naming import INSTANCE_TAG_KEY, NAME_PREFIX, is_managed
from broker.domain.validation import instance_id_problems

if TYPE_CHECKING:
    from mypy_boto3_iam.client import IAMClient
    from mypy_boto3_iam.type_defs import (
        InstanceProfileTypeDef,
        ListAttachedRolePoliciesResponseTypeDef,
        ListInstanceProfilesForRoleResponseTypeDef,
        ListInstanceProfilesResponseTypeDef,
        ListRolePoliciesResponseTypeDef,
        ListRolesResponseTypeDef,
        PolicyDocumentTypeDef,
        RoleTypeDef,
        TagTypeDef,
    )

T = TypeVar("T")

# IAM's answer for an absent role, profile or inline policy (and for one not yet propagated).
_NO_SUCH_ENTITY = "NoSuchEntity"


class BotoIam(RetryingAdapter["IAMClient"]):
    _client: IAMClient

    def get_role(self, name: str) -> RoleInfo | None:
        with translated("GetRole"):
            response = _none_if_missing(
                lambda: self._retry.call("GetRole", lambda: self._client.get_role(RoleName=name))
            )
        return None if response is None else _role_info(response["Role"])

    def create_role(
        self,
        name: str,
        path: str,
        trust_policy: str,
        tags: dict[str, str],
        permissions_boundary: str = "",
    ) -> RoleInfo:
        boundary = (
            _Boundary(PermissionsBoundary=permissions_boundary)
            if permissions_boundary
            else _Boundary()
        )
        with translated("CreateRole"):
            try:
                response = self._retry.call(
                    "CreateRole",
                    lambda: self._client.create_role(
                        RoleName=name,
                        Path=path,
                        AssumeRolePolicyDocument=trust_policy,
                        Tags=_tag_list(tags),
                        **boundary,
                    ),
                )
            except ClientError as error:
                if error_code(error) != "EntityAlreadyExists":
                    raise
                return _already_created("role", self.get_role(name))
        return _role_info(response["Role"])

    def update_trust_policy(self, role_name: str, document: str) -> None:
        with translated("UpdateAssumeRolePolicy"):
            self._retry.call(
                "UpdateAssumeRolePolicy",
                lambda: self._client.update_assume_role_policy(
                    RoleName=role_name, PolicyDocument=document
                ),
            )

    def list_inline_policies(self, role_name: str) -> list[str]:
        def page(marker: str) -> ListRolePoliciesResponseTypeDef:
            return self._client.list_role_policies(RoleName=role_name, **_from(marker))

        with translated("ListRolePolicies"):
            names = _none_if_missing(lambda: self._collect("ListRolePolicies", page, "PolicyNames"))
        return [str(name) for name in names or []]

    def list_attached_policies(self, role_name: str) -> list[str]:
        def page(marker: str) -> ListAttachedRolePoliciesResponseTypeDef:
            return self._client.list_attached_role_policies(RoleName=role_name, **_from(marker))

        operation = "ListAttachedRolePolicies"
        with translated(operation):
            policies = _none_if_missing(lambda: self._collect(operation, page, "AttachedPolicies"))
        return [str(policy["PolicyArn"]) for policy in policies or []]

    def profiles_holding(self, role_name: str) -> list[str]:
        def page(marker: str) -> ListInstanceProfilesForRoleResponseTypeDef:
            return self._client.list_instance_profiles_for_role(RoleName=role_name, **_from(marker))

        operation = "ListInstanceProfilesForRole"
        with translated(operation):
            profiles = _none_if_missing(lambda: self._collect(operation, page, "InstanceProfiles"))
        return [str(p["InstanceProfileName"]) for p in profiles or []]

    def detach_policy(self, role_name: str, policy_arn: str) -> None:
        with translated("DetachRolePolicy"):
            _none_if_missing(
                lambda: self._retry.call(
                    "DetachRolePolicy",
                    lambda: self._client.detach_role_policy(
                        RoleName=role_name, PolicyArn=policy_arn
                    ),
                )
            )

    def _collect(
        self, operation: str, fetch: Callable[[str], Mapping[str, Any]], key: str
    ) -> list[Any]:
        """Every item under `key` across a listing's pages; fetch("") reads the first."""
        items: list[Any] = []
        marker = ""
        while True:
            page = self._retry.call(operation, partial(fetch, marker))
            items += page[key]
            marker = page.get("Marker", "") if page.get("IsTruncated") else ""
            if not marker:
                return items

    def delete_role(self, name: str) -> None:
        with translated("DeleteRole"):
            _none_if_missing(
                lambda: self._retry.call(
                    "DeleteRole", lambda: self._client.delete_role(RoleName=name)
                )
            )

    def get_role_policy(self, role_name: str, policy_name: str) -> dict[str, Any] | None:
        with translated("GetRolePolicy"):
            response = _none_if_missing(
                lambda: self._retry.call(
                    "GetRolePolicy",
                    lambda: self._client.get_role_policy(
                        RoleName=role_name, PolicyName=policy_name
                    ),
                )
            )
        return None if response is None else _policy_dict(response["PolicyDocument"])

    def put_role_policy(self, role_name: str, policy_name: str, document: str) -> None:
        with translated("PutRolePolicy"):
            self._retry.call(
                "PutRolePolicy",
                lambda: self._client.put_role_policy(
                    RoleName=role_name, PolicyName=policy_name, PolicyDocument=document
                ),
            )

    def delete_role_policy(self, role_name: str, policy_name: str) -> None:
        with translated("DeleteRolePolicy"):
            _none_if_missing(
                lambda: self._retry.call(
                    "DeleteRolePolicy",
                    lambda: self._client.delete_role_policy(
                        RoleName=role_name, PolicyName=policy_name
                    ),
                )
            )

    def get_instance_profile(self, name: str) -> ProfileInfo | None:
        with translated("GetInstanceProfile"):
            response = _none_if_missing(
                lambda: self._retry.call(
                    "GetInstanceProfile",
                    lambda: self._client.get_instance_profile(InstanceProfileName=name),
                )
            )
        return None if response is None else _profile_info(response["InstanceProfile"])

    def create_instance_profile(self, name: str, path: str, tags: dict[str, str]) -> ProfileInfo:
        with translated("CreateInstanceProfile"):
            try:
                response = self._retry.call(
                    "CreateInstanceProfile",
                    lambda: self._client.create_instance_profile(
                        InstanceProfileName=name, Path=path, Tags=_tag_list(tags)
                    ),
                )
            except ClientError as error:
                if error_code(error) != "EntityAlreadyExists":
                    raise
                return _already_created("instance profile", self.get_instance_profile(name))
        return _profile_info(response["InstanceProfile"])

    def add_role_to_instance_profile(self, profile_name: str, role_name: str) -> None:
        with translated("AddRoleToInstanceProfile"):
            try:
                self._add_role_once_visible(profile_name, role_name)
            except ClientError as error:
                if not self._already_holds(error, profile_name, role_name):
                    raise

    def remove_role_from_instance_profile(self, profile_name: str, role_name: str) -> None:
        with translated("RemoveRoleFromInstanceProfile"):
            _none_if_missing(
                lambda: self._retry.call(
                    "RemoveRoleFromInstanceProfile",
                    lambda: self._client.remove_role_from_instance_profile(
                        InstanceProfileName=profile_name, RoleName=role_name
                    ),
                )
            )

    def delete_instance_profile(self, name: str) -> None:
        with translated("DeleteInstanceProfile"):
            _none_if_missing(
                lambda: self._retry.call(
                    "DeleteInstanceProfile",
                    lambda: self._client.delete_instance_profile(InstanceProfileName=name),
                )
            )

    def _add_role_once_visible(self, profile_name: str, role_name: str) -> None:
        # Right after CreateRole, IAM itself may not yet find the role: NoSuchEntity.
        self._retry.call(
            "AddRoleToInstanceProfile",
            lambda: self._client.add_role_to_instance_profile(
                InstanceProfileName=profile_name, RoleName=role_name
            ),
            Propagation(
                _is_missing,
                f"IAM did not propagate role {role_name} or instance profile {profile_name}",
            ),
        )

    def managed_instance_ids(self, path: str) -> set[str]:
        """Instances whose role or instance profile the broker made on `path`: named
        accessbroker-<instance id>, on exactly that path, tagged managed-by=accessbroker and with
        the matching instance-id tag. Listings omit tags, so each candidate's are read."""
        found = set()
        for name in self._role_names(path):
            if _made_by_broker(name, self._role_tags(name)):
                found.add(name.removeprefix(NAME_PREFIX))
        for name in self._profile_names(path):
            if _made_by_broker(name, self._profile_tags(name)):
                found.add(name.removeprefix(NAME_PREFIX))
        return found

    def _role_names(self, path: str) -> list[str]:
        """Names of the form accessbroker-<instance id> among the roles on exactly `path`."""

        def page(marker: str) -> ListRolesResponseTypeDef:
            return self._client.list_roles(PathPrefix=path, **_from(marker))

        with translated("ListRoles"):
            roles = self._collect("ListRoles", page, "Roles")
        names = [r["RoleName"] for r in roles if r["Path"] == path]
        return [n for n in names if _instance_id_of(n) is not None]

    def _profile_names(self, path: str) -> list[str]:
        """Names of the form accessbroker-<instance id> among the profiles on exactly `path`."""

        def page(marker: str) -> ListInstanceProfilesResponseTypeDef:
            return self._client.list_instance_profiles(PathPrefix=path, **_from(marker))

        with translated("ListInstanceProfiles"):
            profiles = self._collect("ListInstanceProfiles", page, "InstanceProfiles")
        names = [p["InstanceProfileName"] for p in profiles if p["Path"] == path]
        return [n for n in names if _instance_id_of(n) is not None]

    def _role_tags(self, name: str) -> dict[str, str] | None:
        """The role's tags, or None when it went away since it was listed."""
        with translated("ListRoleTags"):
            response = _none_if_missing(
                lambda: self._retry.call(
                    "ListRoleTags", lambda: self._client.list_role_tags(RoleName=name)
                )
            )
        return None if response is None else _tag_dict(response["Tags"])

    def _profile_tags(self, name: str) -> dict[str, str] | None:
        """The profile's tags, or None when it went away since it was listed."""
        # GetInstanceProfile returns the tags too (and moto lacks ListInstanceProfileTags).
        with translated("GetInstanceProfile"):
            response = _none_if_missing(
                lambda: self._retry.call(
                    "GetInstanceProfile",
                    lambda: self._client.get_instance_profile(InstanceProfileName=name),
                )
            )
        return None if response is None else _tag_dict(response["InstanceProfile"].get("Tags", []))

    def _already_holds(self, error: ClientError, profile_name: str, role_name: str) -> bool:
        # A profile holds at most one role, so adding it twice fails with LimitExceeded.
        if error_code(error) != "LimitExceeded":
            return False
        profile = self.get_instance_profile(profile_name)
        return profile is not None and profile.role_names == (role_name,)


Created = TypeVar("Created", RoleInfo, ProfileInfo)


def _already_created(kind: str, found: Created | None) -> Created:
    """A create that found the entity there: done if the broker made it (a retry, or another
    replica's identical step), refused if someone else did."""
    if found is None:
        raise AwsUnavailable(f"IAM reports the {kind} exists but does not return it yet")
    if not found.managed:
        raise ForeignRole(kind, found.name)
    return found


class _Marker(TypedDict, total=False):
    Marker: str


def _from(marker: str) -> _Marker:
    """Where a listing continues: its first page for ""."""
    return _Marker(Marker=marker) if marker else _Marker()


class _Boundary(TypedDict, total=False):
    PermissionsBoundary: str


def _is_missing(error: BaseException) -> bool:
    return isinstance(error, ClientError) and error_code(error) == _NO_SUCH_ENTITY


def _none_if_missing(call: Callable[[], T]) -> T | None:
    """The call's result, or None when what it reads or deletes does not exist."""
    try:
        return call()
    except ClientError as error:
        if _is_missing(error):
            return None
        raise


def _instance_id_of(name: str) -> str | None:
    """The instance id in a name of the broker's form accessbroker-<instance id>, else None."""
    if not name.startswith(NAME_PREFIX):
        return None
    instance_id = name.removeprefix(NAME_PREFIX)
    return None if instance_id_problems(instance_id) else instance_id


def _made_by_broker(name: str, tags: dict[str, str] | None) -> bool:
    return (
        tags is not None
        and is_managed(tags)
        and tags.get(INSTANCE_TAG_KEY) == _instance_id_of(name)
    )


def _tag_list(tags: dict[str, str]) -> list[TagTypeDef]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _tag_dict(tags: list[TagTypeDef]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


def _role_info(role: RoleTypeDef) -> RoleInfo:
    trust = role.get("AssumeRolePolicyDocument")
    return RoleInfo(
        name=role["RoleName"],
        arn=role["Arn"],
        managed=is_managed(_tag_dict(role.get("Tags", []))),
        trust_policy=None if trust is None else _policy_dict(trust),
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
