"""reconcile and the sweep's repair_drift: drift found, audited, repaired or reported."""

import pytest

from broker.domain.access import GrantState
from broker.domain.audit import SYSTEM_ACTOR
from broker.domain.convergence import RoleInfo
from broker.domain.drift import DriftKind
from broker.domain.errors import AwsUnavailable, InstanceNotFound, InvalidRequest
from broker.service.commands import Reconcile, RepairDrift
from tests.unit.service.fakes import (
    ACCOUNT,
    INSTANCE,
    OTHER_INSTANCE,
    POLICY,
    ROLE,
    World,
    grant_command,
    world,
)

FOREIGN_PROFILE_ARN = f"arn:aws:iam::{ACCOUNT}:instance-profile/TeamProfile"
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
OPERATOR = "ops@example.com"


@pytest.fixture
def w() -> World:
    w = world(INSTANCE, OTHER_INSTANCE)
    w.handle(grant_command("photos"))
    w.aws.calls.clear()
    return w


def drift_actions(w: World) -> list[str]:
    return [a for a in w.db.audit_actions() if a.startswith("drift.")]


def test_a_dry_run_reports_and_changes_nothing(w: World) -> None:
    w.aws.roles[ROLE].policies["backdoor"] = {"Statement": []}
    audit_before = w.db.audit_actions()

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=True, actor=OPERATOR))

    assert [(f.drift.kind, f.drift.actual, f.repaired) for f in findings] == [
        (DriftKind.EXTRA_POLICY, "inline policy backdoor", False)
    ]
    assert w.aws.calls == [] and "backdoor" in w.aws.roles[ROLE].policies
    assert w.db.audit_actions() == audit_before


def test_extra_policies_are_removed_and_the_finding_audited(w: World) -> None:
    w.aws.roles[ROLE].policies["backdoor"] = {"Statement": []}
    w.aws.roles[ROLE].attached.append(ADMIN_ARN)

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor=OPERATOR))

    assert [(f.drift.kind, f.repaired) for f in findings] == [(DriftKind.EXTRA_POLICY, True)] * 2
    assert w.aws.calls == [
        ("delete_role_policy", ROLE, "backdoor"),
        ("detach_policy", ROLE, ADMIN_ARN),
    ]
    assert set(w.aws.roles[ROLE].policies) == {POLICY} and w.aws.roles[ROLE].attached == []
    assert drift_actions(w) == ["drift.detected"] * 2 + ["drift.repaired"] * 2
    detected = [e for e in w.db.snapshot().audit if e.action == "drift.detected"]
    assert {e.actor for e in detected} == {OPERATOR}
    assert detected[0].detail["kind"] == "extra_policy"
    assert detected[0].detail["actual"] == "inline policy backdoor"


def test_a_widened_trust_policy_is_restored(w: World) -> None:
    original = w.aws.roles[ROLE].trust
    w.aws.roles[ROLE].trust = {"Statement": [{"Principal": {"AWS": "*"}}]}

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor=OPERATOR))

    assert [(f.drift.kind, f.repaired) for f in findings] == [(DriftKind.TRUST_POLICY, True)]
    assert w.aws.roles[ROLE].trust == original


def test_a_removed_boundary_is_put_back_and_audited() -> None:
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/accessbroker-boundary"
    w = world(INSTANCE).with_options(permissions_boundary_arn=boundary)
    w.handle(grant_command("photos"))
    w.aws.roles[ROLE].boundary = ""
    w.aws.calls.clear()

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor=OPERATOR))

    assert [(f.drift.kind, f.drift.actual, f.repaired) for f in findings] == [
        (DriftKind.BOUNDARY, "no boundary", True)
    ]
    assert w.aws.calls == [("put_role_boundary", ROLE, boundary)]
    assert drift_actions(w) == ["drift.detected", "drift.repaired"]
    assert "aws.put_boundary" in w.db.audit_actions()


def test_a_grant_on_a_role_that_lost_its_boundary_puts_it_back_before_its_policy() -> None:
    """The record says nothing changed; IAM refuses the policy, and the broker then reads AWS
    in full, puts the boundary back, and waits out its propagation for the policy."""
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/accessbroker-boundary"
    w = world(INSTANCE).with_options(permissions_boundary_arn=boundary)
    w.aws.required_boundary = boundary
    w.handle(grant_command("photos"))
    w.aws.roles[ROLE].boundary = ""
    w.aws.calls.clear()

    granted = w.handle(grant_command("videos")).grant

    assert granted.state is GrantState.ACTIVE
    assert w.aws.calls == [
        ("put_role_boundary", ROLE, boundary),
        ("put_role_policy", ROLE, POLICY, "after_boundary"),
    ]


def test_missing_pieces_are_rebuilt(w: World) -> None:
    w.aws.disassociate(w.aws.associations[INSTANCE].association_id)
    w.aws.roles[ROLE].policies.clear()
    w.aws.calls.clear()

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor=OPERATOR))

    assert {f.drift.kind for f in findings} == {DriftKind.POLICY, DriftKind.ASSOCIATION}
    assert all(f.repaired for f in findings)
    assert [c[0] for c in w.aws.calls] == ["put_role_policy", "associate"]
    assert w.handle(Reconcile(instance_id=INSTANCE, dry_run=True, actor=OPERATOR)) == []


def test_a_foreign_association_is_reported_and_the_grants_fail(w: World) -> None:
    w.aws.disassociate(w.aws.associations[INSTANCE].association_id)
    w.aws.associate_foreign(INSTANCE, FOREIGN_PROFILE_ARN)

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor=OPERATOR))

    assert [(f.drift.kind, f.repaired) for f in findings] == [
        (DriftKind.FOREIGN_ASSOCIATION, False)
    ]
    assert w.aws.associations[INSTANCE].profile_arn == FOREIGN_PROFILE_ARN  # left alone
    assert w.aws.roles == {} and w.aws.profiles == {}  # the broker's own withdrawn
    (grant,) = w.db.grants()
    assert grant.state is GrantState.FAILED
    assert "instance profile the broker does not manage" in grant.failure_reason
    assert "grant.failed" in w.db.audit_actions()
    assert "drift.repaired" not in w.db.audit_actions()


def test_a_terminated_instances_grants_end_and_its_resources_go(w: World) -> None:
    w.aws.terminate(INSTANCE)

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor=OPERATOR))

    assert [(f.drift.kind, f.repaired) for f in findings] == [(DriftKind.INSTANCE_GONE, True)]
    (grant,) = w.db.grants()
    assert grant.state is GrantState.REVOKED
    assert w.aws.roles == {} and w.aws.profiles == {} and INSTANCE not in w.aws.associations
    requested = [e for e in w.db.snapshot().audit if e.action == "grant.revoke_requested"]
    assert requested[0].detail["reason"] == f"instance {INSTANCE} no longer exists"


def test_an_instance_ec2_does_not_know_at_all_is_left_alone(w: World) -> None:
    # A wrong region or account reads the same as a long-gone instance: nothing is ended.
    w.aws.instances.discard(INSTANCE)

    with pytest.raises(InstanceNotFound):
        w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor=OPERATOR))

    assert [g.state for g in w.db.grants()] == [GrantState.ACTIVE]
    assert ROLE in w.aws.roles and w.aws.calls == []


def test_a_repair_that_fails_is_audited_and_reported_unrepaired(w: World) -> None:
    w.aws.roles[ROLE].policies.clear()
    w.aws.fail("put_role_policy", AwsUnavailable("AWS PutRolePolicy failed: Throttling"))

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor=OPERATOR))

    assert [(f.drift.kind, f.repaired) for f in findings] == [(DriftKind.POLICY, False)]
    assert drift_actions(w) == ["drift.detected", "drift.repair_failed"]
    (grant,) = w.db.grants()
    assert grant.state is GrantState.ACTIVE  # still owed its access, retried next time


def test_all_instances_means_those_with_live_grants(w: World) -> None:
    w.handle(grant_command("photos", instance_id=OTHER_INSTANCE))
    for name in list(w.aws.roles):
        w.aws.roles[name].policies.clear()

    findings = w.handle(Reconcile(instance_id="", dry_run=True, actor=OPERATOR))

    assert sorted(f.drift.instance_id for f in findings) == sorted([INSTANCE, OTHER_INSTANCE])


def test_an_instance_the_broker_never_managed_is_not_its_business() -> None:
    w = world(INSTANCE)
    # Another broker's (sharing the role path, with a database of its own).
    other = world(INSTANCE)
    other.handle(grant_command("photos"))
    w.aws.roles, w.aws.profiles = other.aws.roles, other.aws.profiles

    assert w.handle(Reconcile(instance_id=INSTANCE, dry_run=False, actor=OPERATOR)) == []
    assert ROLE in w.aws.roles


def test_a_malformed_instance_id_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        world().handle(Reconcile(instance_id="not-an-instance", dry_run=True, actor=OPERATOR))


def test_the_sweep_repairs_as_the_system_and_one_failure_does_not_stop_it(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w.handle(grant_command("photos", instance_id=OTHER_INSTANCE))
    for name in list(w.aws.roles):
        w.aws.roles[name].policies.clear()
    # The first instance's role cannot even be read now; the second is still repaired (the
    # sweep works on both at once).
    get_role = w.aws.get_role

    def throttled_for_the_first(name: str) -> RoleInfo | None:
        if name == ROLE:
            raise AwsUnavailable("AWS GetRole failed: Throttling")
        return get_role(name)

    monkeypatch.setattr(w.aws, "get_role", throttled_for_the_first)

    findings = w.handle(RepairDrift())

    assert [(f.drift.instance_id, f.repaired) for f in findings] == [(OTHER_INSTANCE, True)]
    drift_events = [e for e in w.db.snapshot().audit if e.action.startswith("drift.")]
    assert {e.actor for e in drift_events} == {SYSTEM_ACTOR}
