"""unrecorded_changes: what AWS shows of the broker's resources that its record lacks."""

from dataclasses import replace

from broker.domain.convergence import (
    AssociationInfo,
    ObservedState,
    RecordedState,
    StepKind,
    unrecorded_changes,
)
from tests.unit.domain.test_convergence import (
    ACCOUNT,
    CONVERGED,
    DOC_A,
    DOC_B,
    INSTANCE,
    NAMES,
)

NOTHING = ObservedState(role=None, policy=None, profile=None, association=None)
RECORDED_ALL = RecordedState(
    role=True,
    policy=DOC_A,
    profile=True,
    role_in_profile=True,
    association_id=CONVERGED.association.association_id if CONVERGED.association else "",
)


def kinds(recorded: RecordedState, observed: ObservedState) -> list[StepKind]:
    return [s.kind for s in unrecorded_changes(NAMES, recorded, observed)]


def test_a_record_that_matches_aws_finds_nothing() -> None:
    assert kinds(RECORDED_ALL, CONVERGED) == []
    assert kinds(RecordedState(), NOTHING) == []


def test_a_build_up_killed_before_its_records_is_found_in_order() -> None:
    assert kinds(RecordedState(), CONVERGED) == [
        StepKind.CREATE_ROLE,
        StepKind.PUT_POLICY,
        StepKind.CREATE_PROFILE,
        StepKind.ADD_ROLE_TO_PROFILE,
        StepKind.ASSOCIATE,
    ]


def test_a_teardown_killed_before_its_records_is_found_in_order() -> None:
    assert kinds(RECORDED_ALL, NOTHING) == [
        StepKind.DISASSOCIATE,
        StepKind.REMOVE_ROLE_FROM_PROFILE,
        StepKind.DELETE_PROFILE,
        StepKind.DELETE_POLICY,
        StepKind.DELETE_ROLE,
    ]


def test_a_different_policy_in_aws_is_a_put_nobody_recorded() -> None:
    changed = replace(CONVERGED, policy=DOC_B)

    assert kinds(RECORDED_ALL, changed) == [StepKind.PUT_POLICY]


def test_a_foreign_association_is_not_the_brokers_to_record() -> None:
    foreign = AssociationInfo("iip-x", INSTANCE, f"{ACCOUNT}:instance-profile/TeamProfile")
    recorded = replace(RECORDED_ALL, association_id="")

    assert kinds(recorded, replace(CONVERGED, association=foreign)) == []


def test_a_replaced_association_is_one_undone_and_one_done() -> None:
    assert CONVERGED.association is not None
    moved = replace(CONVERGED.association, association_id="iip-new")

    steps = unrecorded_changes(NAMES, RECORDED_ALL, replace(CONVERGED, association=moved))

    assert [(s.kind, s.target) for s in steps] == [
        (StepKind.DISASSOCIATE, RECORDED_ALL.association_id),
        (StepKind.ASSOCIATE, NAMES.profile_name),
    ]
