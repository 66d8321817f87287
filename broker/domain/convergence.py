"""Planning convergence: from what AWS holds for an instance and what its grants need, the steps
that close the gap. Each step is idempotent, so a plan interrupted halfway is simply planned again.
Adoption is a variant of the plan: the broker's policy on the role of the instance's own profile.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from broker.domain.errors import ForeignProfile, ForeignRole
from broker.domain.naming import ADOPTABLE_TAG, ManagedNames
from broker.domain.trust import trusts_only_ec2


@dataclass(frozen=True)
class RoleInfo:
    name: str
    arn: str
    managed: bool
    # Who may assume the role; None where it was not read.
    trust_policy: dict[str, Any] | None = None
    # Tagged as a role the broker may adopt (naming.ADOPTABLE_TAG).
    adoptable: bool = False
    # The ARN of its permissions boundary, "" for none; None where it was not read.
    boundary: str | None = None


@dataclass(frozen=True)
class ProfileInfo:
    name: str
    arn: str
    role_names: tuple[str, ...]
    managed: bool


@dataclass(frozen=True)
class AssociationInfo:
    association_id: str
    instance_id: str
    profile_arn: str


@dataclass(frozen=True)
class ObservedState:
    """What AWS holds for one instance's managed names, read just before planning."""

    role: RoleInfo | None
    policy: dict[str, Any] | None
    profile: ProfileInfo | None
    association: AssociationInfo | None
    # On the broker's role besides its own inline policy: other inline policies (names) and
    # attached managed policies (ARNs). Nobody else's business: they are removed.
    other_inline_policies: tuple[str, ...] = ()
    attached_policies: tuple[str, ...] = ()


class StepKind(StrEnum):
    CREATE_ROLE = "create role {target}"
    PUT_POLICY = "put inline policy {within} on role {target}"
    RESTORE_TRUST = "restore the trust policy of role {target} (only EC2 may assume it)"
    PUT_BOUNDARY = "put permissions boundary {within} on role {target}"
    CREATE_PROFILE = "create instance profile {target}"
    ADD_ROLE_TO_PROFILE = "add role {target} to instance profile {within}"
    ASSOCIATE = "associate instance profile {target} with instance {within}"
    DISASSOCIATE = "disassociate instance profile (association {target})"
    REMOVE_ROLE_FROM_PROFILE = "remove role {target} from instance profile {within}"
    DELETE_PROFILE = "delete instance profile {target}"
    DELETE_POLICY = "delete inline policy {within} from role {target}"
    DETACH_POLICY = "detach managed policy {within} from role {target}"
    DELETE_ROLE = "delete role {target}"


@dataclass(frozen=True)
class Step:
    kind: StepKind
    # The resource the step acts on: a role, profile, or association id.
    target: str
    # Where it acts: the policy's name (or managed policy's ARN), or the profile a role goes
    # into or out of.
    within: str = ""

    def describe(self) -> str:
        return self.kind.value.format(target=self.target, within=self.within)


def plan(
    names: ManagedNames,
    desired: dict[str, Any] | None,
    observed: ObservedState,
    adopted: AdoptedRole | None = None,
) -> list[Step]:
    """The steps, in a safe order, that make AWS hold `desired` (None: hold nothing).

    Usually on the broker's own role and profile. With adoption (BROKER_FOREIGN_PROFILE=attach)
    and a foreign profile on the instance, on the role in that profile instead (`adopted`).
    """
    if adopted is not None:
        return _plan_adopted(names, desired, observed, adopted)
    return _plan_own(names, desired, observed)


def _plan_own(
    names: ManagedNames, desired: dict[str, Any] | None, observed: ObservedState
) -> list[Step]:
    """A foreign association blocks granting but not tearing down: the broker then removes only
    its own role and profile and leaves the instance's association alone."""
    association = observed.association
    if association is not None and not is_our_association(names, association):
        if desired is not None:
            raise ForeignProfile(names.instance_id, association.profile_arn)
        observed = replace(observed, association=None)
    _refuse_foreign_names(observed)
    if desired is None:
        return _teardown(names, observed)
    return _build_up(names, desired, observed)


def _refuse_foreign_names(observed: ObservedState) -> None:
    if observed.role is not None:
        require_managed("role", observed.role)
    if observed.profile is not None:
        # Not (necessarily) on the instance: a profile squatting on the broker's name.
        require_managed("instance profile", observed.profile)


Found = TypeVar("Found", RoleInfo, ProfileInfo)


def require_managed(kind: str, found: Found) -> Found:
    """`found` if the broker made it; a role or profile that only bears the broker's name is
    someone else's, and the broker will not change it. Applies to what a plan observed and to
    what a create step found already there (a retry's, another replica's, or someone else's)."""
    if not found.managed:
        raise ForeignRole(kind, found.name)
    return found


def is_our_association(names: ManagedNames, association: AssociationInfo) -> bool:
    # arn:PARTITION:iam::ACCOUNT:instance-profile/PATH/NAME. The whole resource part must match:
    # the name alone could be a look-alike on another path, and since a path may itself contain
    # ":instance-profile/...", so could a mere suffix.
    parts = association.profile_arn.split(":", 5)
    return (
        len(parts) == 6
        and parts[0] == "arn"
        and parts[2] == "iam"
        and parts[5] == f"instance-profile{names.path}{names.profile_name}"
    )


def _build_up(names: ManagedNames, desired: dict[str, Any], observed: ObservedState) -> list[Step]:
    steps = []
    role = observed.role
    if role is None:
        steps.append(Step(StepKind.CREATE_ROLE, names.role_name))
    else:
        steps += _role_repairs(names, role)
    if observed.policy != desired:
        steps.append(Step(StepKind.PUT_POLICY, names.role_name, names.policy_name))
    steps += _other_policy_removal(names, observed)
    if observed.profile is None:
        steps.append(Step(StepKind.CREATE_PROFILE, names.profile_name))
    held = observed.profile.role_names if observed.profile is not None else ()
    steps += [
        Step(StepKind.REMOVE_ROLE_FROM_PROFILE, r, names.profile_name)
        for r in held
        if r != names.role_name
    ]
    if names.role_name not in held:
        steps.append(Step(StepKind.ADD_ROLE_TO_PROFILE, names.role_name, names.profile_name))
    if observed.association is None:
        steps.append(Step(StepKind.ASSOCIATE, names.profile_name, names.instance_id))
    return steps


def _role_repairs(names: ManagedNames, role: RoleInfo) -> list[Step]:
    """Puts back what was changed on the broker's role: its trust (EC2 alone) and its boundary,
    which must be there before any policy is written (IAM refuses the broker otherwise)."""
    steps = []
    if role.trust_policy is not None and not trusts_only_ec2(role.trust_policy):
        steps.append(Step(StepKind.RESTORE_TRUST, names.role_name))
    if lost_boundary(names, role):
        steps.append(Step(StepKind.PUT_BOUNDARY, names.role_name, names.boundary))
    return steps


def lost_boundary(names: ManagedNames, role: RoleInfo) -> bool:
    """The role was read, and does not carry the boundary it should (removed, or replaced)."""
    return bool(names.boundary) and role.boundary is not None and role.boundary != names.boundary


def _teardown(names: ManagedNames, observed: ObservedState) -> list[Step]:
    steps = []
    if observed.association is not None:
        steps.append(Step(StepKind.DISASSOCIATE, observed.association.association_id))
    if observed.profile is not None:
        steps += [
            Step(StepKind.REMOVE_ROLE_FROM_PROFILE, r, names.profile_name)
            for r in observed.profile.role_names
        ]
        steps.append(Step(StepKind.DELETE_PROFILE, names.profile_name))
    if observed.policy is not None:
        steps.append(Step(StepKind.DELETE_POLICY, names.role_name, names.policy_name))
    if observed.role is not None:
        # IAM deletes no role that still has policies.
        steps += _other_policy_removal(names, observed)
        steps.append(Step(StepKind.DELETE_ROLE, names.role_name))
    return steps


def _other_policy_removal(names: ManagedNames, observed: ObservedState) -> list[Step]:
    """Removes what others put on the broker's role: it must grant exactly the live grants."""
    return [
        *(Step(StepKind.DELETE_POLICY, names.role_name, p) for p in observed.other_inline_policies),
        *(Step(StepKind.DETACH_POLICY, names.role_name, arn) for arn in observed.attached_policies),
    ]


# ---------------------------------------------------------------------------------------------
# Adoption (BROKER_FOREIGN_PROFILE=attach): an instance that already holds an instance profile
# the broker did not make keeps it; the broker adds its own inline policy to the role inside,
# and touches nothing else of that role (its other policies, its trust policy) or the
# association.

NO_ROLE = "which holds no role the broker could add its policy to"
MANAGED_ELSEWHERE = "which the broker manages for another instance"
NOT_ADOPTABLE = (
    f"whose role is not tagged {ADOPTABLE_TAG[0]}={ADOPTABLE_TAG[1]}: the platform team marks the "
    "roles the broker may add its policy to"
)


@dataclass(frozen=True)
class AdoptedRole:
    """The role in the instance's foreign profile, and the broker's inline policy on it."""

    profile_arn: str
    association_id: str
    # "" when the profile holds no role.
    role_name: str
    role_arn: str
    policy: dict[str, Any] | None
    # Why the profile cannot carry the instance's grants ("" when it can): it belongs to
    # another instance, or others share it and would get the broker's policy too.
    refusal: str = ""


def profile_name_of(profile_arn: str) -> str:
    """arn:PARTITION:iam::ACCOUNT:instance-profile/PATH/NAME -> NAME."""
    return profile_arn.rsplit("/", 1)[-1]


def _plan_adopted(
    names: ManagedNames,
    desired: dict[str, Any] | None,
    own: ObservedState,
    adopted: AdoptedRole,
) -> list[Step]:
    """The steps that make the adopted role carry `desired` (None: nothing of the broker's).

    The broker's own role and profile, left from before the foreign profile arrived, carry
    nothing while the instance holds another profile: they are withdrawn first.
    """
    if desired is not None and (adopted.refusal or not adopted.role_name):
        why = adopted.refusal or NO_ROLE
        raise ForeignProfile(names.instance_id, adopted.profile_arn, why)
    steps = _plan_own(names, None, own)
    if desired is None:
        # On a shared role, the broker's policy is withdrawn: it reached other instances.
        if adopted.policy is not None and adopted.role_name:
            steps.append(Step(StepKind.DELETE_POLICY, adopted.role_name, names.policy_name))
    elif adopted.policy != desired:
        steps.append(Step(StepKind.PUT_POLICY, adopted.role_name, names.policy_name))
    return steps


@dataclass(frozen=True)
class RecordedState:
    """What the broker's own record says AWS holds for an instance."""

    role: bool = False
    policy: dict[str, Any] | None = None
    profile: bool = False
    role_in_profile: bool = False
    association_id: str = ""


def unrecorded_changes(
    names: ManagedNames, recorded: RecordedState, observed: ObservedState
) -> list[Step]:
    """The changes to the broker's own resources that AWS shows and its record lacks.

    A convergence killed between an AWS call and its audit record leaves such a change; so does
    someone changing the broker's resources behind its back. Foreign resources are not the
    broker's record to keep (planning refuses them).
    """
    role = observed.role is not None and observed.role.managed
    profile = observed.profile is not None and observed.profile.managed
    held = (
        profile and observed.profile is not None and names.role_name in observed.profile.role_names
    )
    association = observed.association
    ours = (
        association.association_id if association and is_our_association(names, association) else ""
    )
    undone = [
        (
            recorded.association_id not in ("", ours),
            Step(StepKind.DISASSOCIATE, recorded.association_id),
        ),
        (
            recorded.role_in_profile and not held,
            Step(StepKind.REMOVE_ROLE_FROM_PROFILE, names.role_name, names.profile_name),
        ),
        (
            recorded.profile and observed.profile is None,
            Step(StepKind.DELETE_PROFILE, names.profile_name),
        ),
        (
            recorded.policy is not None and observed.policy is None,
            Step(StepKind.DELETE_POLICY, names.role_name, names.policy_name),
        ),
        (recorded.role and observed.role is None, Step(StepKind.DELETE_ROLE, names.role_name)),
    ]
    done = [
        (role and not recorded.role, Step(StepKind.CREATE_ROLE, names.role_name)),
        (
            observed.policy is not None and observed.policy != recorded.policy,
            Step(StepKind.PUT_POLICY, names.role_name, names.policy_name),
        ),
        (profile and not recorded.profile, Step(StepKind.CREATE_PROFILE, names.profile_name)),
        (
            held and not recorded.role_in_profile,
            Step(StepKind.ADD_ROLE_TO_PROFILE, names.role_name, names.profile_name),
        ),
        (
            ours not in ("", recorded.association_id),
            Step(StepKind.ASSOCIATE, names.profile_name, names.instance_id),
        ),
    ]
    return [step for happened, step in (*undone, *done) if happened]
