"""Planning with an adopted role, and its drift: only the broker's inline policy on that role."""

from dataclasses import replace
from typing import Any

import pytest

from broker.domain.convergence import (
    AdoptedRole,
    AssociationInfo,
    ObservedState,
    RoleInfo,
    Step,
    StepKind,
    plan,
    profile_name_of,
)
from broker.domain.drift import MISSING, Drift, DriftKind, find_adopted_drift
from broker.domain.errors import ForeignProfile
from broker.domain.naming import POLICY_NAME, ManagedNames
from broker.domain.policy import render
from tests.places import at_home

INSTANCE = "i-0123456789abcdef0"
NAMES = ManagedNames(at_home(INSTANCE), "/accessbroker/")
OWN = f"accessbroker-{INSTANCE}"
PROFILE_ARN = "arn:aws:iam::123456789012:instance-profile/teams/TeamProfile"
FOREIGN = AssociationInfo("iip-x", INSTANCE, PROFILE_ARN)
DOC: dict[str, Any] = {"Version": "2012-10-17", "Statement": [{"Sid": "A"}]}
ADOPTED = AdoptedRole(PROFILE_ARN, "iip-x", "TeamRole", "arn:aws:iam::1:role/TeamRole", None)
NO_OWN = ObservedState(role=None, policy=None, profile=None, association=FOREIGN)


def test_the_profile_name_is_the_last_part_of_its_arn() -> None:
    assert profile_name_of(PROFILE_ARN) == "TeamProfile"


def test_the_policy_is_put_on_the_adopted_role_only() -> None:
    assert plan(NAMES, DOC, NO_OWN, ADOPTED) == [Step(StepKind.PUT_POLICY, "TeamRole", POLICY_NAME)]


def test_nothing_to_do_once_the_role_carries_it() -> None:
    carried = replace(ADOPTED, policy=DOC)
    assert plan(NAMES, DOC, NO_OWN, carried) == []
    assert plan(NAMES, None, NO_OWN, carried) == [
        Step(StepKind.DELETE_POLICY, "TeamRole", POLICY_NAME)
    ]


def test_the_brokers_own_leftovers_are_withdrawn_first() -> None:
    own = ObservedState(
        role=RoleInfo(OWN, f"arn:aws:iam::1:role/accessbroker/{OWN}", managed=True),
        policy=DOC,
        profile=None,
        association=FOREIGN,
    )
    assert [s.kind for s in plan(NAMES, DOC, own, ADOPTED)] == [
        StepKind.DELETE_POLICY,
        StepKind.DELETE_ROLE,
        StepKind.PUT_POLICY,
    ]


def test_a_profile_without_a_role_cannot_carry_grants() -> None:
    empty = AdoptedRole(PROFILE_ARN, "iip-x", "", "", None)
    with pytest.raises(ForeignProfile, match="holds no role"):
        plan(NAMES, DOC, NO_OWN, empty)
    assert plan(NAMES, None, NO_OWN, empty) == []


def test_adopted_drift_is_the_brokers_policy_alone() -> None:
    assert find_adopted_drift(NAMES, DOC, ADOPTED) == [
        Drift(at_home(INSTANCE), DriftKind.POLICY, render(DOC), MISSING)
    ]
    carried = replace(ADOPTED, policy=DOC)
    assert find_adopted_drift(NAMES, DOC, carried) == []
    assert [d.kind for d in find_adopted_drift(NAMES, None, carried)] == [DriftKind.UNNEEDED]
    empty = AdoptedRole(PROFILE_ARN, "iip-x", "", "", None)
    assert [d.kind for d in find_adopted_drift(NAMES, DOC, empty)] == [DriftKind.ROLE_IN_PROFILE]
