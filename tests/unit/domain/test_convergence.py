"""Planning convergence, checked against a tiny simulator of IAM and EC2 that enforces AWS's
ordering rules (one role per profile, DeleteConflict, one association per instance)."""

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.convergence import (
    AssociationInfo,
    ObservedState,
    ProfileInfo,
    RoleInfo,
    Step,
    StepKind,
    plan,
    require_managed,
)
from broker.domain.errors import ForeignProfile, ForeignRole
from broker.domain.naming import POLICY_NAME, ManagedNames
from broker.domain.trust import EC2_TRUST_POLICY
from tests.places import at_home

INSTANCE = "i-0123456789abcdef0"
ACCOUNT = "arn:aws:iam::123456789012"
BOUNDARY = f"{ACCOUNT}:policy/accessbroker-boundary"
NAMES = ManagedNames(at_home(INSTANCE), "/accessbroker/", BOUNDARY)
NAME = f"accessbroker-{INSTANCE}"
EC2_TRUST: dict[str, Any] = json.loads(EC2_TRUST_POLICY)
ROLE = RoleInfo(
    NAME,
    f"{ACCOUNT}:role/accessbroker/{NAME}",
    managed=True,
    trust_policy=EC2_TRUST,
    boundary=BOUNDARY,
)
# Someone let another account assume the broker's role.
WIDE_TRUST: dict[str, Any] = {
    **EC2_TRUST,
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
OTHER_BOUNDARY = f"{ACCOUNT}:policy/wider"
PROFILE_ARN = f"{ACCOUNT}:instance-profile/accessbroker/{NAME}"
EMPTY_PROFILE = ProfileInfo(NAME, PROFILE_ARN, (), managed=True)
FULL_PROFILE = replace(EMPTY_PROFILE, role_names=(NAME,))
ASSOCIATION = AssociationInfo("iip-assoc-1", INSTANCE, PROFILE_ARN)
DOC_A: dict[str, Any] = {"Version": "2012-10-17", "Statement": [{"Sid": "A"}]}
DOC_B: dict[str, Any] = {"Version": "2012-10-17", "Statement": [{"Sid": "B"}]}
NOTHING = ObservedState(role=None, policy=None, profile=None, association=None)
CONVERGED = ObservedState(role=ROLE, policy=DOC_A, profile=FULL_PROFILE, association=ASSOCIATION)


def kinds(steps: list[Step]) -> list[StepKind]:
    return [step.kind for step in steps]


class Conflict(Exception):
    """What AWS would answer to a step taken out of order."""


def refuse_if(condition: object, error: str) -> None:
    if condition:
        raise Conflict(error)


Desired = dict[str, Any] | None
Transition = Callable[[ObservedState, Step, Desired], ObservedState]


def create_role(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    refuse_if(s.role is not None, "EntityAlreadyExists: role")
    return replace(s, role=ROLE)


def put_policy(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    target = step.target
    refuse_if(s.role is None or desired is None or target != NAME, "NoSuchEntity: role")
    assert s.role is not None
    # The broker's IAM policy: PutRolePolicy only on a role carrying the boundary.
    refuse_if(s.role.boundary != BOUNDARY, "AccessDenied: iam:PermissionsBoundary")
    refuse_if(step.within != POLICY_NAME, "the broker puts only its own inline policy")
    return replace(s, policy=desired)


def restore_trust(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    refuse_if(s.role is None or step.target != NAME, "NoSuchEntity: role")
    assert s.role is not None
    return replace(s, role=replace(s.role, trust_policy=EC2_TRUST))


def put_boundary(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    refuse_if(s.role is None or step.target != NAME, "NoSuchEntity: role")
    refuse_if(step.within != BOUNDARY, "AccessDenied: only accessbroker-boundary")
    assert s.role is not None
    return replace(s, role=replace(s.role, boundary=step.within))


def detach_policy(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    refuse_if(step.within not in s.attached_policies, "NoSuchEntity: attachment")
    left = tuple(a for a in s.attached_policies if a != step.within)
    return replace(s, attached_policies=left)


def create_profile(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    refuse_if(s.profile is not None, "EntityAlreadyExists: profile")
    return replace(s, profile=EMPTY_PROFILE)


def add_role(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    target = step.target
    refuse_if(s.role is None or s.profile is None or target != NAME, "NoSuchEntity")
    assert s.profile is not None
    refuse_if(s.profile.role_names, "LimitExceeded: one role per instance profile")
    return replace(s, profile=replace(s.profile, role_names=(target,)))


def remove_role(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    target = step.target
    refuse_if(s.profile is None or target not in s.profile.role_names, "NoSuchEntity")
    assert s.profile is not None
    held = tuple(r for r in s.profile.role_names if r != target)
    return replace(s, profile=replace(s.profile, role_names=held))


def associate(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    refuse_if(s.profile is None or not s.profile.role_names, "InvalidParameterValue: no role")
    refuse_if(s.association is not None, "IncorrectState: already associated")
    assert s.profile is not None
    return replace(s, association=AssociationInfo("iip-new", INSTANCE, s.profile.arn))


def disassociate(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    target = step.target
    found = s.association is not None and s.association.association_id == target
    refuse_if(not found, "InvalidAssociationID.NotFound")
    return replace(s, association=None)


def delete_profile(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    refuse_if(s.profile is None, "NoSuchEntity: profile")
    assert s.profile is not None
    refuse_if(s.profile.role_names or s.association, "DeleteConflict: profile in use")
    return replace(s, profile=None)


def delete_policy(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    if step.within != POLICY_NAME:
        refuse_if(step.within not in s.other_inline_policies, "NoSuchEntity: policy")
        left = tuple(p for p in s.other_inline_policies if p != step.within)
        return replace(s, other_inline_policies=left)
    refuse_if(s.role is None or s.policy is None, "NoSuchEntity: policy")
    return replace(s, policy=None)


def delete_role(s: ObservedState, step: Step, desired: Desired) -> ObservedState:
    refuse_if(s.role is None, "NoSuchEntity: role")
    in_profile = s.profile is not None and NAME in s.profile.role_names
    has_policies = s.policy is not None or s.other_inline_policies or s.attached_policies
    refuse_if(has_policies or in_profile, "DeleteConflict: role in use")
    return replace(s, role=None)


# Each step as IAM and EC2 would carry it out, refusing what they would refuse.
AWS: dict[StepKind, Transition] = {
    StepKind.CREATE_ROLE: create_role,
    StepKind.PUT_POLICY: put_policy,
    StepKind.RESTORE_TRUST: restore_trust,
    StepKind.PUT_BOUNDARY: put_boundary,
    StepKind.DETACH_POLICY: detach_policy,
    StepKind.CREATE_PROFILE: create_profile,
    StepKind.ADD_ROLE_TO_PROFILE: add_role,
    StepKind.REMOVE_ROLE_FROM_PROFILE: remove_role,
    StepKind.ASSOCIATE: associate,
    StepKind.DISASSOCIATE: disassociate,
    StepKind.DELETE_PROFILE: delete_profile,
    StepKind.DELETE_POLICY: delete_policy,
    StepKind.DELETE_ROLE: delete_role,
}


def test_the_simulator_knows_every_step() -> None:
    assert set(AWS) == set(StepKind)


def run(state: ObservedState, steps: list[Step], desired: dict[str, Any] | None) -> ObservedState:
    for step in steps:
        state = AWS[step.kind](state, step, desired)
    return state


# --- build-up -----------------------------------------------------------------------------------


def test_build_up_from_nothing_in_order() -> None:
    assert plan(NAMES, DOC_A, NOTHING) == [
        Step(StepKind.CREATE_ROLE, NAME),
        Step(StepKind.PUT_POLICY, NAME, POLICY_NAME),
        Step(StepKind.CREATE_PROFILE, NAME),
        Step(StepKind.ADD_ROLE_TO_PROFILE, NAME, NAME),
        Step(StepKind.ASSOCIATE, NAME, INSTANCE),
    ]


def test_nothing_to_do_when_aws_already_matches() -> None:
    assert plan(NAMES, DOC_A, CONVERGED) == []
    # Equal documents, not the same object, count as matching.
    assert plan(NAMES, {**DOC_A, "Statement": [{"Sid": "A"}]}, CONVERGED) == []


def test_a_changed_policy_is_only_put() -> None:
    assert plan(NAMES, DOC_B, CONVERGED) == [Step(StepKind.PUT_POLICY, NAME, POLICY_NAME)]


def test_a_missing_policy_is_put() -> None:
    assert plan(NAMES, DOC_A, replace(CONVERGED, policy=None)) == [
        Step(StepKind.PUT_POLICY, NAME, POLICY_NAME)
    ]


def test_a_role_missing_from_its_profile_is_added_back() -> None:
    observed = replace(CONVERGED, profile=EMPTY_PROFILE)
    assert plan(NAMES, DOC_A, observed) == [Step(StepKind.ADD_ROLE_TO_PROFILE, NAME, NAME)]


def test_a_stale_role_in_the_profile_is_swapped_out_first() -> None:
    observed = replace(CONVERGED, profile=replace(FULL_PROFILE, role_names=("old-role",)))
    assert plan(NAMES, DOC_A, observed) == [
        Step(StepKind.REMOVE_ROLE_FROM_PROFILE, "old-role", NAME),
        Step(StepKind.ADD_ROLE_TO_PROFILE, NAME, NAME),
    ]


def test_a_missing_association_is_made() -> None:
    observed = replace(CONVERGED, association=None)
    assert plan(NAMES, DOC_A, observed) == [Step(StepKind.ASSOCIATE, NAME, INSTANCE)]


def test_resumes_after_a_crash_between_role_and_profile() -> None:
    observed = ObservedState(role=ROLE, policy=DOC_A, profile=None, association=None)
    assert kinds(plan(NAMES, DOC_A, observed)) == [
        StepKind.CREATE_PROFILE,
        StepKind.ADD_ROLE_TO_PROFILE,
        StepKind.ASSOCIATE,
    ]


def test_steps_describe_themselves() -> None:
    assert Step(StepKind.CREATE_ROLE, NAME).describe() == f"create role {NAME}"
    assert Step(StepKind.DISASSOCIATE, "iip-1").describe() == (
        "disassociate instance profile (association iip-1)"
    )
    assert Step(StepKind.PUT_POLICY, NAME, "accessbroker-grants").describe() == (
        f"put inline policy accessbroker-grants on role {NAME}"
    )
    assert Step(StepKind.REMOVE_ROLE_FROM_PROFILE, "other", NAME).describe() == (
        f"remove role other from instance profile {NAME}"
    )


# --- foreign resources --------------------------------------------------------------------------


def test_a_foreign_association_is_refused_naming_its_profile() -> None:
    foreign = f"{ACCOUNT}:instance-profile/TeamProfile"
    observed = replace(CONVERGED, association=AssociationInfo("iip-x", INSTANCE, foreign))
    with pytest.raises(ForeignProfile) as raised:
        plan(NAMES, DOC_A, observed)
    assert raised.value.profile_arn == foreign
    assert foreign in str(raised.value) and INSTANCE in str(raised.value)


def test_teardown_leaves_a_foreign_association_alone_and_removes_our_own() -> None:
    foreign = f"{ACCOUNT}:instance-profile/TeamProfile"
    observed = replace(CONVERGED, association=AssociationInfo("iip-x", INSTANCE, foreign))

    steps = plan(NAMES, None, observed)

    assert [s.kind for s in steps] == [
        StepKind.REMOVE_ROLE_FROM_PROFILE,
        StepKind.DELETE_PROFILE,
        StepKind.DELETE_POLICY,
        StepKind.DELETE_ROLE,
    ]


@pytest.mark.parametrize(
    "arn",
    [
        f"{ACCOUNT}:instance-profile/{NAME}",  # the same name on the root path
        f"{ACCOUNT}:instance-profile/other/{NAME}",
        f"{ACCOUNT}:instance-profile/other/accessbroker/{NAME}",
        f"{ACCOUNT}:instance-profile/accessbroker/{NAME}-copy",
        f"{ACCOUNT}:instance-profile/accessbroker/x{NAME}",
        # IAM paths may contain ':', so a suffix match alone could be fooled.
        f"{ACCOUNT}:instance-profile/x:instance-profile/accessbroker/{NAME}",
        f"{ACCOUNT}:role/accessbroker/{NAME}",
        f"arn:aws:sts::123456789012:instance-profile/accessbroker/{NAME}",
        f"instance-profile/accessbroker/{NAME}",
    ],
)
def test_a_look_alike_profile_is_foreign(arn: str) -> None:
    observed = replace(CONVERGED, association=AssociationInfo("iip-x", INSTANCE, arn))
    with pytest.raises(ForeignProfile):
        plan(NAMES, DOC_A, observed)


@pytest.mark.parametrize(
    "arn",
    [PROFILE_ARN, f"arn:aws-us-gov:iam::123456789012:instance-profile/accessbroker/{NAME}"],
)
def test_our_profile_is_recognised_in_any_partition(arn: str) -> None:
    observed = replace(CONVERGED, association=AssociationInfo("iip-x", INSTANCE, arn))
    assert plan(NAMES, DOC_A, observed) == []


def test_our_profile_on_the_root_path() -> None:
    names = ManagedNames(at_home(INSTANCE), "/")
    arn = f"{ACCOUNT}:instance-profile/{NAME}"
    observed = replace(CONVERGED, association=AssociationInfo("iip-x", INSTANCE, arn))
    assert plan(names, DOC_A, observed) == []


@pytest.mark.parametrize("desired", [DOC_A, None])
def test_an_unmanaged_role_is_refused(desired: dict[str, Any] | None) -> None:
    observed = replace(CONVERGED, role=replace(ROLE, managed=False))
    with pytest.raises(ForeignRole) as raised:
        plan(NAMES, desired, observed)
    assert f"role {NAME}" in str(raised.value)


@pytest.mark.parametrize("desired", [DOC_A, None])
def test_an_unmanaged_profile_with_our_name_is_refused(desired: dict[str, Any] | None) -> None:
    observed = ObservedState(
        role=None, policy=None, profile=replace(EMPTY_PROFILE, managed=False), association=None
    )
    with pytest.raises(ForeignRole) as raised:
        plan(NAMES, desired, observed)
    assert f"instance profile {NAME}" in str(raised.value)


def test_what_a_create_found_is_kept_only_if_the_broker_made_it() -> None:
    assert require_managed("role", ROLE) is ROLE
    assert require_managed("instance profile", EMPTY_PROFILE) is EMPTY_PROFILE
    with pytest.raises(ForeignRole, match=f"role {NAME} exists but is not tagged"):
        require_managed("role", replace(ROLE, managed=False))
    with pytest.raises(ForeignRole, match=f"instance profile {NAME} exists but is not tagged"):
        require_managed("instance profile", replace(EMPTY_PROFILE, managed=False))


# --- teardown -----------------------------------------------------------------------------------


def test_teardown_in_the_safe_order() -> None:
    assert plan(NAMES, None, CONVERGED) == [
        Step(StepKind.DISASSOCIATE, "iip-assoc-1"),
        Step(StepKind.REMOVE_ROLE_FROM_PROFILE, NAME, NAME),
        Step(StepKind.DELETE_PROFILE, NAME),
        Step(StepKind.DELETE_POLICY, NAME, POLICY_NAME),
        Step(StepKind.DELETE_ROLE, NAME),
    ]


def test_nothing_to_tear_down() -> None:
    assert plan(NAMES, None, NOTHING) == []


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (ObservedState(ROLE, None, None, None), [StepKind.DELETE_ROLE]),
        (ObservedState(ROLE, DOC_A, None, None), [StepKind.DELETE_POLICY, StepKind.DELETE_ROLE]),
        (ObservedState(None, None, EMPTY_PROFILE, None), [StepKind.DELETE_PROFILE]),
        (
            ObservedState(ROLE, None, FULL_PROFILE, None),
            [StepKind.REMOVE_ROLE_FROM_PROFILE, StepKind.DELETE_PROFILE, StepKind.DELETE_ROLE],
        ),
        (
            ObservedState(None, None, EMPTY_PROFILE, ASSOCIATION),
            [StepKind.DISASSOCIATE, StepKind.DELETE_PROFILE],
        ),
    ],
)
def test_partial_teardown_plans_only_what_remains(
    observed: ObservedState, expected: list[StepKind]
) -> None:
    steps = plan(NAMES, None, observed)
    assert kinds(steps) == expected
    assert run(observed, steps, None) == NOTHING


# --- properties ---------------------------------------------------------------------------------


@st.composite
def observed_states(draw: st.DrawFn) -> ObservedState:
    """Any state a crash, a retry or a manual change could leave the broker's resources in."""
    role = draw(st.none() | st.just(ROLE))
    policy = draw(st.sampled_from([None, DOC_A, DOC_B])) if role else None
    held_choices: list[tuple[str, ...]] = [(), ("stale-role",)] + ([(NAME,)] if role else [])
    profile = draw(
        st.none()
        | st.builds(
            lambda held: replace(EMPTY_PROFILE, role_names=held), st.sampled_from(held_choices)
        )
    )
    association = draw(st.none() | st.just(ASSOCIATION)) if profile else None
    if role is None:
        return ObservedState(role, policy, profile, association)
    trust = draw(st.sampled_from([EC2_TRUST, WIDE_TRUST]))
    # Removed, or replaced by another.
    boundary = draw(st.sampled_from([BOUNDARY, "", OTHER_BOUNDARY]))
    return ObservedState(
        replace(role, trust_policy=trust, boundary=boundary),
        policy,
        profile,
        association,
        other_inline_policies=draw(st.sampled_from([(), ("backdoor",)])),
        attached_policies=draw(st.sampled_from([(), (ADMIN_ARN,)])),
    )


desired_documents = st.sampled_from([None, DOC_A, DOC_B])


@given(observed_states(), desired_documents)
def test_planned_steps_are_accepted_by_aws_and_converge(
    observed: ObservedState, desired: dict[str, Any] | None
) -> None:
    steps = plan(NAMES, desired, observed)
    assert len(set(steps)) == len(steps)
    after = run(observed, steps, desired)
    assert plan(NAMES, desired, after) == []
    if desired is None:
        assert after == NOTHING
    else:
        assert after.role == ROLE and after.policy == desired
        assert after.profile is not None and after.profile.role_names == (NAME,)
        assert after.association is not None and after.association.profile_arn == PROFILE_ARN


@given(observed_states(), desired_documents, desired_documents, st.integers(0, 10))
def test_an_interrupted_plan_is_finished_by_planning_again(
    observed: ObservedState,
    first: dict[str, Any] | None,
    then: dict[str, Any] | None,
    done: int,
) -> None:
    # Crash after `done` steps towards `first`; meanwhile the grants changed to `then`.
    halfway = run(observed, plan(NAMES, first, observed)[:done], first)
    after = run(halfway, plan(NAMES, then, halfway), then)
    assert plan(NAMES, then, after) == []


@given(observed_states(), desired_documents)
def test_planning_is_pure(observed: ObservedState, desired: dict[str, Any] | None) -> None:
    assert plan(NAMES, desired, observed) == plan(NAMES, desired, observed)


def test_policies_others_put_on_our_role_are_removed() -> None:
    observed = replace(
        CONVERGED, other_inline_policies=("backdoor",), attached_policies=(ADMIN_ARN,)
    )
    assert plan(NAMES, DOC_A, observed) == [
        Step(StepKind.DELETE_POLICY, NAME, "backdoor"),
        Step(StepKind.DETACH_POLICY, NAME, ADMIN_ARN),
    ]


def test_teardown_removes_others_policies_before_the_role() -> None:
    observed = replace(
        CONVERGED, other_inline_policies=("backdoor",), attached_policies=(ADMIN_ARN,)
    )
    steps = plan(NAMES, None, observed)
    assert steps[-3:] == [
        Step(StepKind.DELETE_POLICY, NAME, "backdoor"),
        Step(StepKind.DETACH_POLICY, NAME, ADMIN_ARN),
        Step(StepKind.DELETE_ROLE, NAME),
    ]
    assert run(observed, steps, None) == NOTHING


def test_a_widened_trust_policy_is_restored() -> None:
    observed = replace(CONVERGED, role=replace(ROLE, trust_policy=WIDE_TRUST))
    assert plan(NAMES, DOC_A, observed) == [Step(StepKind.RESTORE_TRUST, NAME)]


def test_an_unread_trust_policy_is_left_alone() -> None:
    observed = replace(CONVERGED, role=replace(ROLE, trust_policy=None))
    assert plan(NAMES, DOC_A, observed) == []


@pytest.mark.parametrize("found", ["", OTHER_BOUNDARY])
def test_a_removed_or_replaced_boundary_is_put_back_before_any_policy(found: str) -> None:
    observed = replace(CONVERGED, role=replace(ROLE, boundary=found), policy=DOC_B)
    assert plan(NAMES, DOC_A, observed) == [
        Step(StepKind.PUT_BOUNDARY, NAME, BOUNDARY),
        Step(StepKind.PUT_POLICY, NAME, POLICY_NAME),
    ]


def test_an_unread_boundary_or_none_configured_is_left_alone() -> None:
    unread = replace(CONVERGED, role=replace(ROLE, boundary=None))
    assert plan(NAMES, DOC_A, unread) == []
    unbounded = replace(NAMES, boundary="")
    assert plan(unbounded, DOC_A, replace(CONVERGED, role=replace(ROLE, boundary=""))) == []


def test_teardown_removes_a_role_without_its_boundary() -> None:
    """Taking access away never waits for the boundary: IAM lets the broker delete policies
    from its roles whatever boundary they carry."""
    observed = replace(CONVERGED, role=replace(ROLE, boundary=""))
    assert StepKind.PUT_BOUNDARY not in kinds(plan(NAMES, None, observed))
    assert run(observed, plan(NAMES, None, observed), None) == NOTHING


@given(observed_states())
def test_teardown_never_creates_and_build_up_never_deletes(observed: ObservedState) -> None:
    creating = {
        StepKind.CREATE_ROLE,
        StepKind.PUT_BOUNDARY,
        StepKind.PUT_POLICY,
        StepKind.CREATE_PROFILE,
        StepKind.ADD_ROLE_TO_PROFILE,
        StepKind.ASSOCIATE,
    }
    destroying = {
        StepKind.DISASSOCIATE,
        StepKind.DELETE_PROFILE,
        StepKind.DELETE_POLICY,
        StepKind.DELETE_ROLE,
    }
    assert not set(kinds(plan(NAMES, None, observed))) & creating
    # Build-up removes only what others added to the broker's role, never the broker's own.
    build_up = plan(NAMES, DOC_A, observed)
    assert not {s.kind for s in build_up if s.within in ("", POLICY_NAME, NAME)} & destroying
