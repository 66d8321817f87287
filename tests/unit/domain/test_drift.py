"""find_drift: each way AWS can differ from what live grants need, named and described."""

import json
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from broker.domain.convergence import AssociationInfo, ObservedState, ProfileInfo, RoleInfo
from broker.domain.drift import MISSING, NOT_THE_BROKERS, Drift, DriftKind, find_drift
from broker.domain.naming import ManagedNames
from broker.domain.policy import render
from broker.domain.trust import EC2_TRUST_POLICY
from tests.places import at_home

INSTANCE = "i-0123456789abcdef0"
NAMES = ManagedNames(at_home(INSTANCE), "/accessbroker/")
NAME = f"accessbroker-{INSTANCE}"
ACCOUNT = "arn:aws:iam::123456789012"
EC2_TRUST: dict[str, Any] = json.loads(EC2_TRUST_POLICY)
ROLE = RoleInfo(NAME, f"{ACCOUNT}:role/accessbroker/{NAME}", managed=True, trust_policy=EC2_TRUST)
PROFILE_ARN = f"{ACCOUNT}:instance-profile/accessbroker/{NAME}"
PROFILE = ProfileInfo(NAME, PROFILE_ARN, (NAME,), managed=True)
ASSOCIATION = AssociationInfo("iip-assoc-1", INSTANCE, PROFILE_ARN)
DOC: dict[str, Any] = {"Version": "2012-10-17", "Statement": [{"Sid": "A"}]}
WIDER: dict[str, Any] = {"Version": "2012-10-17", "Statement": [{"Sid": "Everything"}]}
CONVERGED = ObservedState(role=ROLE, policy=DOC, profile=PROFILE, association=ASSOCIATION)
NOTHING = ObservedState(role=None, policy=None, profile=None, association=None)
FOREIGN_ARN = f"{ACCOUNT}:instance-profile/TeamProfile"


def drift_of(observed: ObservedState, desired: dict[str, Any] | None = DOC) -> list[Drift]:
    return find_drift(NAMES, desired, observed, instance_exists=True)


def one(kind: DriftKind, expected: str, actual: str) -> list[Drift]:
    return [Drift(at_home(INSTANCE), kind, expected, actual)]


def test_no_drift_when_aws_holds_what_the_grants_need() -> None:
    assert drift_of(CONVERGED) == []
    assert drift_of(NOTHING, desired=None) == []


def test_a_missing_role_is_the_only_role_drift_reported() -> None:
    observed = replace(CONVERGED, role=None, policy=None)
    assert drift_of(observed) == one(DriftKind.ROLE, f"role /accessbroker/{NAME}", MISSING)


def test_a_role_under_our_name_that_we_did_not_create() -> None:
    observed = replace(CONVERGED, role=replace(ROLE, managed=False))
    assert drift_of(observed) == one(DriftKind.ROLE, f"role /accessbroker/{NAME}", NOT_THE_BROKERS)


BOUNDARY = f"{ACCOUNT}:policy/accessbroker-boundary"
BOUNDED = replace(NAMES, boundary=BOUNDARY)


def test_a_removed_or_replaced_boundary_is_boundary_drift() -> None:
    expected = f"permissions boundary {BOUNDARY}"
    for found, actual in (
        ("", "no boundary"),
        (f"{ACCOUNT}:policy/wider", f"{ACCOUNT}:policy/wider"),
    ):
        observed = replace(CONVERGED, role=replace(ROLE, boundary=found))
        assert find_drift(BOUNDED, DOC, observed, instance_exists=True) == one(
            DriftKind.BOUNDARY, expected, actual
        )


def test_the_boundary_is_no_drift_when_it_is_there_unread_or_not_configured() -> None:
    there = replace(CONVERGED, role=replace(ROLE, boundary=BOUNDARY))
    unread = replace(CONVERGED, role=replace(ROLE, boundary=None))
    assert find_drift(BOUNDED, DOC, there, instance_exists=True) == []
    assert find_drift(BOUNDED, DOC, unread, instance_exists=True) == []
    assert drift_of(replace(CONVERGED, role=replace(ROLE, boundary=""))) == []


def test_a_widened_trust_policy_shows_both_documents() -> None:
    wide = {**EC2_TRUST, "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}}]}
    observed = replace(CONVERGED, role=replace(ROLE, trust_policy=wide))
    assert drift_of(observed) == one(DriftKind.TRUST_POLICY, EC2_TRUST_POLICY, render(wide))


def test_an_edited_policy_shows_both_documents() -> None:
    assert drift_of(replace(CONVERGED, policy=WIDER)) == one(
        DriftKind.POLICY, render(DOC), render(WIDER)
    )


def test_a_deleted_policy() -> None:
    assert drift_of(replace(CONVERGED, policy=None)) == one(DriftKind.POLICY, render(DOC), MISSING)


def test_each_extra_policy_is_its_own_finding() -> None:
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    observed = replace(CONVERGED, other_inline_policies=("backdoor",), attached_policies=(admin,))
    expected = "no policy besides inline policy accessbroker-grants"
    assert drift_of(observed) == [
        Drift(at_home(INSTANCE), DriftKind.EXTRA_POLICY, expected, "inline policy backdoor"),
        Drift(
            at_home(INSTANCE), DriftKind.EXTRA_POLICY, expected, f"attached managed policy {admin}"
        ),
    ]


def test_a_missing_profile() -> None:
    observed = replace(CONVERGED, profile=None, association=None)
    assert drift_of(observed) == [
        Drift(
            at_home(INSTANCE), DriftKind.PROFILE, f"instance profile /accessbroker/{NAME}", MISSING
        ),
        Drift(
            at_home(INSTANCE),
            DriftKind.ASSOCIATION,
            f"instance profile /accessbroker/{NAME}",
            "no instance profile",
        ),
    ]


def test_a_profile_under_our_name_that_we_did_not_create() -> None:
    observed = replace(CONVERGED, profile=replace(PROFILE, managed=False))
    assert [d.kind for d in drift_of(observed)] == [DriftKind.PROFILE]
    assert drift_of(observed)[0].actual == NOT_THE_BROKERS


def test_the_role_in_the_profile_swapped_or_removed() -> None:
    swapped = replace(CONVERGED, profile=replace(PROFILE, role_names=("intruder",)))
    emptied = replace(CONVERGED, profile=replace(PROFILE, role_names=()))
    assert drift_of(swapped) == one(DriftKind.ROLE_IN_PROFILE, f"role {NAME}", "intruder")
    assert drift_of(emptied) == one(DriftKind.ROLE_IN_PROFILE, f"role {NAME}", "no role")


def test_a_missing_association() -> None:
    assert drift_of(replace(CONVERGED, association=None)) == one(
        DriftKind.ASSOCIATION, f"instance profile /accessbroker/{NAME}", "no instance profile"
    )


def test_a_foreign_association_is_all_that_is_reported() -> None:
    observed = replace(
        CONVERGED, policy=None, association=AssociationInfo("iip-x", INSTANCE, FOREIGN_ARN)
    )
    assert drift_of(observed) == one(
        DriftKind.FOREIGN_ASSOCIATION,
        f"instance profile /accessbroker/{NAME}",
        f"instance profile {FOREIGN_ARN}",
    )


def test_a_gone_instance_is_all_that_is_reported() -> None:
    found = find_drift(NAMES, DOC, replace(CONVERGED, policy=None), instance_exists=False)
    assert found == one(DriftKind.INSTANCE_GONE, "a running instance", MISSING)


def test_resources_no_live_grant_needs() -> None:
    assert drift_of(CONVERGED, desired=None) == one(
        DriftKind.UNNEEDED,
        "nothing: no live grant",
        f"role {NAME}, instance profile {NAME}, association iip-assoc-1",
    )
    role_only = ObservedState(role=ROLE, policy=None, profile=None, association=None)
    assert drift_of(role_only, desired=None)[0].actual == f"role {NAME}"


def test_without_live_grants_others_resources_are_not_the_brokers_drift() -> None:
    foreign_role = replace(ROLE, managed=False)
    observed = ObservedState(
        role=foreign_role,
        policy=None,
        profile=None,
        association=AssociationInfo("iip-x", INSTANCE, FOREIGN_ARN),
    )
    assert drift_of(observed, desired=None) == []


@st.composite
def observations(draw: st.DrawFn) -> ObservedState:
    role = draw(st.sampled_from([None, ROLE, replace(ROLE, managed=False)]))
    return ObservedState(
        role=role,
        policy=draw(st.sampled_from([None, DOC, WIDER])) if role else None,
        profile=draw(st.sampled_from([None, PROFILE, replace(PROFILE, role_names=())])),
        association=draw(st.sampled_from([None, ASSOCIATION])),
        other_inline_policies=draw(st.sampled_from([(), ("x",)])) if role else (),
    )


@given(observations())
def test_drift_is_found_exactly_when_something_differs(observed: ObservedState) -> None:
    found = drift_of(observed)
    assert (found == []) == (observed == CONVERGED)
    assert all(d.instance_id == INSTANCE and d.expected != d.actual for d in found)
