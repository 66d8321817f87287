"""BROKER_FOREIGN_PROFILE=attach: the broker adds only its inline policy to the role in an
instance's own profile, takes only that away again, and records everything it touches."""

import json
from dataclasses import replace

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.boundary import Boundaries, BoundaryReach, boundary_document
from broker.domain.drift import DriftKind
from broker.domain.errors import AwsUnavailable, ForeignProfile
from broker.domain.naming import ADOPTABLE_TAG
from broker.domain.places import HOME_ACCOUNT
from broker.domain.trust import EC2_TRUST_POLICY
from broker.service.commands import DescribeInstanceAccess, Reconcile, RevokeAccess
from tests.unit.service.fakes import (
    INSTANCE,
    OTHER_INSTANCE,
    POLICY,
    ROLE,
    World,
    grant_command,
    policy_of,
    world,
)

TEAM_POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "TeamOwn"}]}
TEAM_TRUST = json.loads(EC2_TRUST_POLICY)


def team_profile(w: World, name: str, *, with_role: bool = True, adoptable: bool = True) -> str:
    """An instance profile (and role) of the instance owner's, on the root path; the role tagged
    as one the broker may adopt unless told."""
    profile = w.aws.create_instance_profile(name, "/", {})
    if with_role:
        tags = dict([ADOPTABLE_TAG]) if adoptable else {}
        w.aws.create_role(name, "/", EC2_TRUST_POLICY, tags)
        w.aws.put_role_policy(name, "team-own", json.dumps(TEAM_POLICY))
        w.aws.add_role_to_instance_profile(name, name)
    return profile.arn


@pytest.fixture
def w() -> World:
    w = world(INSTANCE).with_options(adopt_foreign_profiles=True)
    w.aws.associate_foreign(INSTANCE, team_profile(w, "TeamRole"))
    w.aws.calls.clear()
    return w


def test_a_grant_adds_only_the_brokers_policy_to_the_role_in_the_profile(w: World) -> None:
    result = w.handle(grant_command("photos"))

    assert result.grant.state is GrantState.ACTIVE
    assert w.aws.calls == [("put_role_policy", "TeamRole", POLICY)]
    team = w.aws.roles["TeamRole"]
    assert team.policies == {
        "team-own": TEAM_POLICY,
        POLICY: policy_of(("photos", "", Access.UPLOAD)),
    }
    assert team.trust == TEAM_TRUST
    assert w.aws.associations[INSTANCE].association_id == "iip-assoc-foreign"
    assert ROLE not in w.aws.roles  # no role of the broker's own
    assert result.grant.resources.role_name == "TeamRole"
    assert result.grant.resources.profile_name == "TeamRole"


def test_an_adopted_role_keeps_its_own_boundary_and_the_audit_says_so(w: World) -> None:
    boundary = "arn:aws:iam::123456789012:policy/accessbroker-boundary"
    bounded = w.with_options(permissions_boundary_arn=boundary)

    bounded.handle(grant_command("photos"))
    w.aws.roles["TeamRole"].policies.pop(POLICY)  # drift on the adopted role, to be repaired
    findings = bounded.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor="ops"))

    assert w.aws.roles["TeamRole"].boundary == ""
    assert ("put_role_boundary", "TeamRole", boundary) not in w.aws.calls
    assert [f.drift.kind for f in findings] == [DriftKind.POLICY]
    puts = [e for e in w.db.snapshot().audit if e.action == "aws.put_policy"]
    assert len(puts) == 2
    assert all(
        "an adopted role keeps the permissions boundary" in e.detail["boundary"] for e in puts
    )


def test_an_adopted_role_is_not_held_to_the_brokers_boundary(w: World) -> None:
    """Its owner's boundary, if any, is what bounds it; the broker's says nothing of it."""
    nothing = Boundaries({HOME_ACCOUNT: BoundaryReach.of(boundary_document(["elsewhere-*"]))})

    granted = w.with_boundaries(nothing).handle(grant_command("photos")).grant

    assert granted.state is GrantState.ACTIVE and granted.resources.role_name == "TeamRole"


def test_what_the_broker_touched_is_recorded(w: World) -> None:
    w.handle(grant_command("photos"))

    access = w.handle(DescribeInstanceAccess(instance_id=INSTANCE))
    assert access.resources.role_name == "TeamRole"
    assert json.loads(access.policy_document) == policy_of(("photos", "", Access.UPLOAD))
    put = [e for e in w.db.snapshot().audit if e.action == "aws.put_policy"]
    assert put[0].detail["change"] == f"put inline policy {POLICY} on role TeamRole"


def test_revoking_removes_only_the_brokers_policy(w: World) -> None:
    grant = w.handle(grant_command("photos")).grant
    w.aws.calls.clear()

    revoked = w.handle(RevokeAccess(grant_id=grant.grant_id)).grant

    assert revoked.state is GrantState.REVOKED
    assert w.aws.calls == [("delete_role_policy", "TeamRole", POLICY)]
    assert w.aws.roles["TeamRole"].policies == {"team-own": TEAM_POLICY}
    assert w.aws.associations[INSTANCE].association_id == "iip-assoc-foreign"
    assert w.handle(DescribeInstanceAccess(instance_id=INSTANCE)).policy_document == ""


def test_a_dry_run_shows_the_policy_going_onto_the_adopted_role(w: World) -> None:
    result = w.handle(grant_command("photos", dry_run=True))

    assert result.planned_changes == (f"put inline policy {POLICY} on role TeamRole",)
    assert w.aws.calls == []


@pytest.mark.parametrize(
    ("profile", "why"),
    [
        ({"with_role": False}, "holds no role the broker could add its policy to"),
        ({"adoptable": False}, "not tagged accessbroker:adoptable=true"),
    ],
    ids=["without a role", "role not tagged adoptable"],
)
def test_a_profile_the_broker_may_not_adopt_is_refused_saying_why_and_nothing_is_written(
    profile: dict[str, bool], why: str
) -> None:
    w = world(INSTANCE)
    adopting = w.with_options(adopt_foreign_profiles=True)
    w.aws.associate_foreign(INSTANCE, team_profile(w, "Team", **profile))
    w.aws.calls.clear()

    with pytest.raises(ForeignProfile, match=why):
        adopting.handle(grant_command("photos"))

    assert w.aws.calls == [] and w.db.grants() == []
    assert all(POLICY not in role.policies for role in w.aws.roles.values())


def test_without_adoption_a_foreign_profile_is_still_refused(w: World) -> None:
    refusing = w.with_options(adopt_foreign_profiles=False)
    with pytest.raises(ForeignProfile, match="which the broker does not manage"):
        refusing.handle(grant_command("photos"))


def test_a_replaced_profile_takes_the_policy_with_it(w: World) -> None:
    w.handle(grant_command("photos"))
    w.aws.associate_foreign(INSTANCE, team_profile(w, "NewTeamRole"))
    w.aws.calls.clear()

    w.converge(INSTANCE, "ops")

    assert w.aws.calls == [
        ("delete_role_policy", "TeamRole", POLICY),
        ("put_role_policy", "NewTeamRole", POLICY),
    ]
    assert POLICY not in w.aws.roles["TeamRole"].policies
    assert (
        w.handle(DescribeInstanceAccess(instance_id=INSTANCE)).resources.role_name == "NewTeamRole"
    )


def test_a_profile_taken_off_the_instance_leaves_no_policy_behind(w: World) -> None:
    w.handle(grant_command("photos"))
    del w.aws.associations[INSTANCE]

    w.converge(INSTANCE, "ops")

    assert POLICY not in w.aws.roles["TeamRole"].policies
    # The instance is the broker's to equip again: its own role and profile now carry the grant.
    assert w.aws.roles[ROLE].policies == {POLICY: policy_of(("photos", "", Access.UPLOAD))}
    assert w.aws.associations[INSTANCE].profile_arn.endswith(f"/accessbroker/{ROLE}")


def test_drift_of_an_adopted_role_is_only_the_brokers_policy(w: World) -> None:
    w.handle(grant_command("photos"))
    team = w.aws.roles["TeamRole"]
    team.policies[POLICY] = {"Statement": [{"Sid": "Widened"}]}
    team.policies["team-extra"] = {"Statement": []}  # the owner's business, not drift

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor="ops"))

    assert [(f.drift.kind, f.repaired) for f in findings] == [(DriftKind.POLICY, True)]
    assert team.policies[POLICY] == policy_of(("photos", "", Access.UPLOAD))
    assert "team-extra" in team.policies


def test_a_profile_other_instances_hold_is_refused_and_nothing_is_written(w: World) -> None:
    w.aws.instances.add(OTHER_INSTANCE)
    w.aws.associations[OTHER_INSTANCE] = replace(
        w.aws.associations[INSTANCE], association_id="iip-other", instance_id=OTHER_INSTANCE
    )

    with pytest.raises(ForeignProfile, match="1 other instance"):
        w.handle(grant_command("photos"))

    assert w.aws.calls == [] and w.db.grants() == []


def test_a_role_other_profiles_hold_is_refused(w: World) -> None:
    w.aws.create_instance_profile("Elsewhere", "/", {})
    w.aws.profiles["Elsewhere"].roles.append("TeamRole")
    w.aws.calls.clear()

    with pytest.raises(ForeignProfile, match="other instance profiles hold too"):
        w.handle(grant_command("photos"))

    assert w.aws.calls == []


def test_another_instances_broker_profile_is_never_adopted_or_touched() -> None:
    w = world(INSTANCE, OTHER_INSTANCE)
    w.handle(grant_command("photos", instance_id=OTHER_INSTANCE))
    others = w.aws.associations[OTHER_INSTANCE]
    w.aws.associate_foreign(INSTANCE, others.profile_arn)
    adopting = w.with_options(adopt_foreign_profiles=True)
    before = dict(w.aws.roles[f"accessbroker-{OTHER_INSTANCE}"].policies)
    w.aws.calls.clear()

    with pytest.raises(ForeignProfile, match="manages for another instance"):
        adopting.handle(grant_command("secrets"))
    adopting.converge(INSTANCE, "ops")  # nothing desired: still nothing touched

    assert w.aws.calls == []
    assert w.aws.roles[f"accessbroker-{OTHER_INSTANCE}"].policies == before


def test_the_adopted_role_is_recorded_before_the_policy_is_put(w: World) -> None:
    w.aws.fail("put_role_policy", AwsUnavailable("AWS PutRolePolicy failed: Throttling"))

    with pytest.raises(AwsUnavailable):
        w.handle(grant_command("photos"))

    # Had the put reached IAM before the failure, the record already names where it went.
    assert w.handle(DescribeInstanceAccess(instance_id=INSTANCE)).resources.role_name == "TeamRole"


def test_once_shared_the_adopted_role_loses_the_brokers_policy_and_the_grants_fail(
    w: World,
) -> None:
    w.handle(grant_command("photos"))
    w.aws.instances.add(OTHER_INSTANCE)
    w.aws.associations[OTHER_INSTANCE] = replace(
        w.aws.associations[INSTANCE], association_id="iip-other", instance_id=OTHER_INSTANCE
    )

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor="ops"))

    assert [(f.drift.kind, f.repaired) for f in findings] == [
        (DriftKind.FOREIGN_ASSOCIATION, False)
    ]
    assert POLICY not in w.aws.roles["TeamRole"].policies
    assert [g.state for g in w.db.grants()] == [GrantState.FAILED]
