"""Adoption (BROKER_FOREIGN_PROFILE=attach): an instance that already holds an instance profile
the broker did not make keeps it; the broker adds its own inline policy to the role inside, and
touches nothing else of that role (its other policies, its trust policy) or the association.
"""

from dataclasses import dataclass
from typing import Any

from broker.domain.convergence import ObservedState, Step, StepKind, plan
from broker.domain.errors import ForeignProfile
from broker.domain.naming import ManagedNames

NO_ROLE = "which holds no role the broker could add its policy to"
MANAGED_ELSEWHERE = "which the broker manages for another instance"


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


def plan_adopted(
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
    steps = plan(names, None, own)
    if desired is None:
        # On a shared role, the broker's policy is withdrawn: it reached other instances.
        if adopted.policy is not None and adopted.role_name:
            steps.append(Step(StepKind.DELETE_POLICY, adopted.role_name, names.policy_name))
    elif adopted.policy != desired:
        steps.append(Step(StepKind.PUT_POLICY, adopted.role_name, names.policy_name))
    return steps
