"""Drift: the differences between what an instance's live grants need and what AWS holds.

Convergence repairs most drift by simply running (planning is idempotent); finding it first is
what lets the broker say what differed: someone changed the broker's resources behind its back.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from broker.domain.convergence import (
    AdoptedRole,
    AssociationInfo,
    ObservedState,
    ProfileInfo,
    RoleInfo,
    is_our_association,
    lost_boundary,
)
from broker.domain.naming import ManagedNames
from broker.domain.places import InstanceRef
from broker.domain.policy import render
from broker.domain.trust import EC2_TRUST_POLICY, trusts_only_ec2

MISSING = "missing"
NOTHING = "nothing: no live grant"
NOT_THE_BROKERS = "exists, but was not created by the broker (no managed-by tag)"


class DriftKind(StrEnum):
    ROLE = "role"
    TRUST_POLICY = "trust_policy"
    # The role's permissions boundary was removed or replaced: put back.
    BOUNDARY = "boundary"
    POLICY = "policy"
    EXTRA_POLICY = "extra_policy"
    PROFILE = "profile"
    ROLE_IN_PROFILE = "role_in_profile"
    ASSOCIATION = "association"
    # Reported, never overwritten: someone chose another profile for the instance.
    FOREIGN_ASSOCIATION = "foreign_association"
    INSTANCE_GONE = "instance_gone"
    UNNEEDED = "unneeded"


@dataclass(frozen=True)
class Drift:
    instance: InstanceRef
    kind: DriftKind
    # In words; policies as their JSON.
    expected: str
    actual: str

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id


def find_drift(
    names: ManagedNames,
    desired: dict[str, Any] | None,
    observed: ObservedState,
    *,
    instance_exists: bool,
) -> list[Drift]:
    """Every way `observed` differs from what `desired` (None: no live grant) needs."""
    if desired is None:
        return _unneeded(names, observed)
    if not instance_exists:
        return [Drift(names.instance, DriftKind.INSTANCE_GONE, "a running instance", MISSING)]
    association = observed.association
    if association is not None and not is_our_association(names, association):
        return [
            Drift(
                names.instance,
                DriftKind.FOREIGN_ASSOCIATION,
                _our_profile(names),
                f"instance profile {association.profile_arn}",
            )
        ]
    return [
        *_role_drift(names, desired, observed),
        *_profile_drift(names, observed),
        *_association_drift(names, observed),
    ]


def _role_drift(
    names: ManagedNames, desired: dict[str, Any], observed: ObservedState
) -> list[Drift]:
    def drift(kind: DriftKind, expected: str, actual: str) -> Drift:
        return Drift(names.instance, kind, expected, actual)

    role = observed.role
    expected_role = f"role {names.path}{names.role_name}"
    if role is None or not role.managed:
        return [drift(DriftKind.ROLE, expected_role, MISSING if role is None else NOT_THE_BROKERS)]
    found = []
    if role.trust_policy is not None and not trusts_only_ec2(role.trust_policy):
        found.append(drift(DriftKind.TRUST_POLICY, EC2_TRUST_POLICY, render(role.trust_policy)))
    if lost_boundary(names, role):
        expected = f"permissions boundary {names.boundary}"
        found.append(drift(DriftKind.BOUNDARY, expected, role.boundary or "no boundary"))
    if observed.policy != desired:
        actual = MISSING if observed.policy is None else render(observed.policy)
        found.append(drift(DriftKind.POLICY, render(desired), actual))
    only_ours = f"no policy besides inline policy {names.policy_name}"
    found += [
        drift(DriftKind.EXTRA_POLICY, only_ours, f"inline policy {name}")
        for name in observed.other_inline_policies
    ]
    found += [
        drift(DriftKind.EXTRA_POLICY, only_ours, f"attached managed policy {arn}")
        for arn in observed.attached_policies
    ]
    return found


def _profile_drift(names: ManagedNames, observed: ObservedState) -> list[Drift]:
    profile = observed.profile
    if profile is None or not profile.managed:
        actual = MISSING if profile is None else NOT_THE_BROKERS
        return [Drift(names.instance, DriftKind.PROFILE, _our_profile(names), actual)]
    if profile.role_names == (names.role_name,):
        return []
    held = ", ".join(profile.role_names) or "no role"
    return [Drift(names.instance, DriftKind.ROLE_IN_PROFILE, f"role {names.role_name}", held)]


def _association_drift(names: ManagedNames, observed: ObservedState) -> list[Drift]:
    if observed.association is not None:
        return []  # a foreign one was reported before anything else
    expected = _our_profile(names)
    return [Drift(names.instance, DriftKind.ASSOCIATION, expected, "no instance profile")]


def _our_profile(names: ManagedNames) -> str:
    return f"instance profile {names.path}{names.profile_name}"


def _unneeded(names: ManagedNames, observed: ObservedState) -> list[Drift]:
    """The broker's own resources, still there though no live grant needs them."""
    association = observed.association
    held = [
        f"role {observed.role.name}" if observed.role and observed.role.managed else "",
        f"instance profile {observed.profile.name}"
        if observed.profile and observed.profile.managed
        else "",
        f"association {association.association_id}"
        if association and is_our_association(names, association)
        else "",
    ]
    if not any(held):
        return []
    actual = ", ".join(h for h in held if h)
    return [Drift(names.instance, DriftKind.UNNEEDED, NOTHING, actual)]


def find_adopted_drift(
    names: ManagedNames, desired: dict[str, Any] | None, adopted: AdoptedRole
) -> list[Drift]:
    """Drift of an adopted instance: only the broker's own inline policy on the adopted role is
    the broker's business; the role's other policies, its trust, its permissions boundary (the
    platform team's, if any: the broker never puts its own on a role it did not create) and the
    association are not."""

    def drift(kind: DriftKind, expected: str, actual: str) -> Drift:
        return Drift(names.instance, kind, expected, actual)

    where = f"inline policy {names.policy_name} on role {adopted.role_name}"
    if desired is None:
        return [] if adopted.policy is None else [drift(DriftKind.UNNEEDED, NOTHING, where)]
    if adopted.refusal:
        expected = f"instance profile {adopted.profile_arn} for this instance alone"
        actual = f"instance profile {adopted.profile_arn}, {adopted.refusal}"
        return [drift(DriftKind.FOREIGN_ASSOCIATION, expected, actual)]
    if not adopted.role_name:
        expected = f"a role in instance profile {adopted.profile_arn}"
        return [drift(DriftKind.ROLE_IN_PROFILE, expected, "no role")]
    if adopted.policy == desired:
        return []
    actual = MISSING if adopted.policy is None else render(adopted.policy)
    return [drift(DriftKind.POLICY, render(desired), actual)]


# -- the screen of a drift pass ---------------------------------------------------------------


@dataclass(frozen=True)
class ListedRole:
    """A role as IAM lists it in bulk (GetAccountAuthorizationDetails): with its inline
    policies, its attached managed policies and the instance profiles that hold it."""

    role: RoleInfo
    inline_policies: Mapping[str, dict[str, Any]]
    attached_policies: tuple[str, ...]
    profiles: tuple[ProfileInfo, ...]


def listed_state(
    names: ManagedNames, listed: ListedRole | None, association: AssociationInfo | None
) -> ObservedState:
    """What AWS holds for the instance's names as the bulk listings show it, for a drift pass
    to screen instances with. The listings show a profile only where it holds the role, so an
    empty profile looks missing: the screen then errs towards suspicion, the only way it may."""
    if listed is None:
        return ObservedState(role=None, policy=None, profile=None, association=association)
    ours = listed.role.managed  # another's role is refused, its other policies none of ours
    others = sorted(name for name in listed.inline_policies if name != names.policy_name)
    return ObservedState(
        role=listed.role,
        policy=listed.inline_policies.get(names.policy_name),
        profile=next((p for p in listed.profiles if p.name == names.profile_name), None),
        association=association,
        other_inline_policies=tuple(others) if ours else (),
        attached_policies=listed.attached_policies if ours else (),
    )
