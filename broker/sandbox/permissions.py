"""The permissions AWS checks before it carries out an IAM or EC2 call on roles, instance
profiles and instance associations: each an action on a resource ARN, in a context.

moto checks most of these calls against resource "*" and never asks for iam:PassRole, so a
policy scoped to a path could not be tested against it. `required_permissions` says what AWS
would check instead; `broker.sandbox.authorization` makes the emulator check it.

The ARNs and context keys follow the IAM and EC2 Service Authorization References:
- an IAM call naming an instance profile is checked on the profile (AddRoleToInstanceProfile
  and RemoveRoleFromInstanceProfile included); one naming only a role, on the role
  (PutRolePermissionsBoundary and DeleteRolePermissionsBoundary included); one naming only a
  managed policy (GetPolicy, GetPolicyVersion), on the policy;
- a role or profile is named with its path: for Create* the request's Path (default "/"), else
  the path it exists under. One that does not exist has no path, and IAM cannot know the one
  it would have: it is named as on the default path "/". A policy scoped to a path therefore
  refuses lookups of missing roles unless it also allows `role/<name>`;
- AddRoleToInstanceProfile, AssociateIamInstanceProfile and ReplaceIamInstanceProfileAssociation
  pass the role in the profile to EC2: they also need iam:PassRole on that role with
  iam:PassedToService = ec2.amazonaws.com;
- creating a role or profile with tags also needs iam:TagRole / iam:TagInstanceProfile on it;
- a call naming an existing role (other than CreateRole) carries the role's tags as
  iam:ResourceTag/<key> and aws:ResourceTag/<key>;
- iam:PermissionsBoundary is the boundary the call would set (CreateRole,
  PutRolePermissionsBoundary: the request's PermissionsBoundary, absent without one) or the one
  the role has (PutRolePolicy, DeleteRolePolicy, AttachRolePolicy, DetachRolePolicy,
  DeleteRolePermissionsBoundary: absent when it has none);
- iam:PassRole carries iam:PassedToService only, not the passed role's tags;
- EC2's association calls are checked on the instance; describe calls support no resource-level
  permissions and stay on "*", as moto has them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from moto.ec2.models import ec2_backends
from moto.iam.exceptions import NotFoundException
from moto.iam.models import IAMBackend, InstanceProfile, Role, iam_backends
from moto.utilities.utils import get_partition

# The services whose calls `required_permissions` may know; the others are never looked at.
SCOPED_SERVICES = frozenset({"iam", "ec2"})
PASS_ROLE = "iam:PassRole"
PASSED_TO_EC2: Mapping[str, str] = {"iam:PassedToService": "ec2.amazonaws.com"}
PERMISSIONS_BOUNDARY_KEY = "iam:PermissionsBoundary"
# The request parameters that name what a call acts on, or give its context (flattened as moto
# reads them).
REQUEST_PARAMETERS = (
    "RoleName",
    "InstanceProfileName",
    "Path",
    "InstanceId",
    "AssociationId",
    "IamInstanceProfile.Name",
    "IamInstanceProfile.Arn",
    "PolicyArn",
    "PermissionsBoundary",
)
# The calls whose iam:PermissionsBoundary is the boundary they set, and those whose is the one
# the role has.
_SETTING_A_BOUNDARY = frozenset({"CreateRole", "PutRolePermissionsBoundary"})
_UNDER_THE_ROLES_BOUNDARY = frozenset(
    {
        "PutRolePolicy",
        "DeleteRolePolicy",
        "AttachRolePolicy",
        "DetachRolePolicy",
        "DeleteRolePermissionsBoundary",
    }
)
_RESOURCE_TAG_PREFIXES = ("iam:ResourceTag/", "aws:ResourceTag/")
_TAG_ACTION_OF_CREATE = {
    "CreateRole": "iam:TagRole",
    "CreateInstanceProfile": "iam:TagInstanceProfile",
}
_EC2_INSTANCE_ACTIONS = frozenset(
    {
        "AssociateIamInstanceProfile",
        "DisassociateIamInstanceProfile",
        "ReplaceIamInstanceProfileAssociation",
    }
)
_EC2_PASSING_ACTIONS = frozenset(
    {"AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation"}
)
_DEFAULT_PATH = "/"


@dataclass(frozen=True)
class Call:
    """One request as authorization sees it: who it is addressed to and what it names."""

    service: str
    action: str
    account_id: str
    region: str
    params: Mapping[str, str]
    tagged: bool = False


@dataclass(frozen=True)
class Permission:
    """An action the caller's policies must allow on a resource, given the context keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


def required_permissions(call: Call) -> tuple[Permission, ...] | None:
    """What AWS checks for the call; None for calls left to moto's own check."""
    if call.service == "iam":
        return _iam_permissions(call)
    if call.service == "ec2" and call.action in _EC2_INSTANCE_ACTIONS:
        return _ec2_permissions(call)
    return None


def _iam_permissions(call: Call) -> tuple[Permission, ...] | None:
    names = _IamNames(call)
    context: Mapping[str, str] = {}
    if "InstanceProfileName" in call.params:
        resource = names.profile_arn(call.params["InstanceProfileName"])
    elif "RoleName" in call.params:
        resource = names.role_arn(call.params["RoleName"])
        context = _role_call_context(call, names.existing_role(call.params["RoleName"]))
    elif "PolicyArn" in call.params:
        resource = call.params["PolicyArn"]  # reading a managed policy: on the policy
    else:
        return None  # users, policies, listings: moto's own check
    permissions = [Permission(f"iam:{call.action}", resource, context)]
    if call.tagged and call.action in _TAG_ACTION_OF_CREATE:
        permissions.append(Permission(_TAG_ACTION_OF_CREATE[call.action], resource))
    if call.action == "AddRoleToInstanceProfile":
        role = names.role_arn(call.params["RoleName"])
        permissions.append(Permission(PASS_ROLE, role, PASSED_TO_EC2))
    return tuple(permissions)


def _role_call_context(call: Call, role: Role | None) -> dict[str, str]:
    """The context keys of a call naming a role by RoleName; `role` when it exists."""
    context = {} if role is None else _resource_tags(role)
    boundary = _boundary_in_context(call, role)
    if boundary:
        context[PERMISSIONS_BOUNDARY_KEY] = boundary
    return context


def _resource_tags(role: Role) -> dict[str, str]:
    return {
        f"{prefix}{tag['Key']}": tag["Value"]
        for tag in role.tags
        for prefix in _RESOURCE_TAG_PREFIXES
    }


def _boundary_in_context(call: Call, role: Role | None) -> str | None:
    if call.action in _SETTING_A_BOUNDARY:
        return call.params.get("PermissionsBoundary")
    if call.action in _UNDER_THE_ROLES_BOUNDARY and role is not None:
        return role.permissions_boundary_arn
    return None


def _ec2_permissions(call: Call) -> tuple[Permission, ...]:
    instance_id = call.params.get("InstanceId") or _associated_instance(call) or "*"
    partition = get_partition(call.region)
    instance = f"arn:{partition}:ec2:{call.region}:{call.account_id}:instance/{instance_id}"
    permissions = [Permission(f"ec2:{call.action}", instance)]
    role = _role_in_profile(call) if call.action in _EC2_PASSING_ACTIONS else None
    if role is not None:
        permissions.append(Permission(PASS_ROLE, role, PASSED_TO_EC2))
    return tuple(permissions)


class _IamNames:
    """ARNs of the roles and profiles a call names, with the path each has or will have."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._partition = get_partition(call.region)
        self._backend = _iam_backend(call)

    def role_arn(self, name: str) -> str:
        return self._arn("role", name, self._backend.get_role)

    def profile_arn(self, name: str) -> str:
        return self._arn("instance-profile", name, self._backend.get_instance_profile)

    def existing_role(self, name: str) -> Role | None:
        """The role the call names, unless it is being created or does not exist."""
        if self._call.action.startswith("Create"):
            return None
        try:
            return self._backend.get_role(name)
        except NotFoundException:
            return None

    def _arn(self, kind: str, name: str, find: Callable[[str], Role | InstanceProfile]) -> str:
        if self._call.action.startswith("Create"):
            path = self._call.params.get("Path", _DEFAULT_PATH)
        else:
            path = _existing_path(find, name)
        return f"arn:{self._partition}:iam::{self._call.account_id}:{kind}{path}{name}"


def _existing_path(find: Callable[[str], Role | InstanceProfile], name: str) -> str:
    """The path the role or profile exists under; the default path when it does not exist."""
    try:
        return find(name).path
    except NotFoundException:
        return _DEFAULT_PATH


def _associated_instance(call: Call) -> str | None:
    """The instance of the association the call names; None when there is no such one."""
    association_id = call.params.get("AssociationId")
    associations = ec2_backends[call.account_id][call.region].iam_instance_profile_associations
    for instance_id, association in associations.items():
        if association.association_id == association_id:
            return instance_id
    return None


def _role_in_profile(call: Call) -> str | None:
    """The ARN of the role the named profile would pass to EC2; None without profile or role."""
    profile = _named_profile(call)
    return None if profile is None or not profile.roles else profile.roles[0].arn


def _named_profile(call: Call) -> InstanceProfile | None:
    backend = _iam_backend(call)
    try:
        if "IamInstanceProfile.Arn" in call.params:
            return backend.get_instance_profile_by_arn(call.params["IamInstanceProfile.Arn"])
        return backend.get_instance_profile(call.params.get("IamInstanceProfile.Name", ""))
    except NotFoundException:
        return None


def _iam_backend(call: Call) -> IAMBackend:
    return iam_backends[call.account_id][get_partition(call.region)]
