"""converge_instance over fakes: failures, resumption, drift repair and concurrency."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.audit import Outcome
from broker.domain.boundary import Boundaries, BoundaryReach, boundary_document
from broker.domain.errors import AwsRejected, AwsUnavailable, OutsideBoundary
from broker.domain.grants import Grant, InstanceResources
from broker.domain.places import HOME_ACCOUNT, InstanceRef
from broker.service.commands import RevokeAccess
from tests.places import at_home
from tests.unit.service.fakes import (
    ACCOUNT,
    INSTANCE,
    OTHER_INSTANCE,
    POLICY,
    ROLE,
    FakeProfile,
    World,
    grant_command,
    policy_of,
)

# The instances that exist in the world `w` (tests/unit/conftest.py).
INSTANCES = (INSTANCE, OTHER_INSTANCE)


def settling(w: World) -> list[InstanceRef]:
    with w.db() as uow:
        return uow.grants.settling_instances()


def test_unavailable_aws_leaves_the_grant_pending_until_a_later_convergence(w: World) -> None:
    w.aws.fail("associate", AwsUnavailable("EC2 did not answer"))

    with pytest.raises(AwsUnavailable):
        w.handle(grant_command())

    [pending] = w.db.grants()
    assert pending.state is GrantState.PENDING
    assert pending.failure_reason == "EC2 did not answer"
    assert w.db.audit_actions()[-1] == "grant.retry_later"
    assert w.db.snapshot().audit[-1].outcome is Outcome.ERROR
    assert INSTANCE not in w.aws.associations
    assert settling(w) == [at_home(INSTANCE)]

    w.aws.calls.clear()
    w.converge(INSTANCE, "reconciler")

    done = w.grant_of(pending.grant_id)
    assert (done.state, done.failure_reason) == (GrantState.ACTIVE, "")
    assert done.resources.association_id == w.aws.associations[INSTANCE].association_id
    assert w.aws.calls == [("associate", INSTANCE, ROLE)], "finished steps are not repeated"
    assert w.db.audit_actions()[-2:] == ["aws.associate", "grant.active"]
    assert settling(w) == []


def test_retrying_the_same_request_finishes_a_pending_grant(w: World) -> None:
    w.aws.fail("create_instance_profile", AwsUnavailable("IAM throttled"), times=2)
    for _ in range(2):
        with pytest.raises(AwsUnavailable):
            w.handle(grant_command(idempotency_key="k"))

    result = w.handle(grant_command(idempotency_key="k"))

    assert [g.grant_id for g in w.db.grants()] == [result.grant.grant_id]
    assert result.grant.state is GrantState.ACTIVE
    assert len(w.aws.writes("create_role")) == 1


def test_rejected_aws_call_fails_the_pending_grant_with_the_reason(w: World) -> None:
    w.aws.fail("put_role_policy", AwsRejected("AccessDenied: not allowed"))

    with pytest.raises(AwsRejected):
        w.handle(grant_command("photos"))

    [failed] = w.db.grants()
    assert failed.state is GrantState.FAILED
    assert failed.failure_reason == "AccessDenied: not allowed"
    [event] = [e for e in w.db.snapshot().audit if e.action == "grant.failed"]
    assert event.outcome == Outcome.ERROR
    assert event.detail["failure_reason"] == "AccessDenied: not allowed"
    assert settling(w) == []
    # The role created for the failed grant alone is withdrawn again.
    assert ROLE not in w.aws.roles

    # The next grant converges without the failed one.
    logs = w.handle(grant_command("logs", Access.READ)).grant
    assert logs.state is GrantState.ACTIVE
    assert w.aws.roles[ROLE].policies[POLICY] == policy_of(("logs", "", Access.READ))


def test_unavailable_aws_during_teardown_is_finished_later(w: World) -> None:
    grant = w.handle(grant_command()).grant
    w.aws.fail("delete_role", AwsUnavailable("IAM did not answer"))

    with pytest.raises(AwsUnavailable):
        w.handle(RevokeAccess(grant_id=grant.grant_id))

    revoking = w.grant_of(grant.grant_id)
    assert (revoking.state, revoking.failure_reason) == (GrantState.REVOKING, "IAM did not answer")
    assert list(w.aws.roles) == [ROLE]
    assert w.aws.roles[ROLE].policies == {}

    w.converge(INSTANCE, "reconciler")

    assert w.grant_of(grant.grant_id).state is GrantState.REVOKED
    assert (w.aws.roles, w.aws.profiles, w.aws.associations) == ({}, {}, {})


def test_converging_repairs_drift_in_aws(w: World) -> None:
    grant = w.handle(grant_command()).grant
    w.aws.roles[ROLE].policies[POLICY] = policy_of(("everything", "", Access.READ_WRITE))
    w.aws.calls.clear()

    w.converge(INSTANCE, "reconciler")

    assert w.aws.calls == [("put_role_policy", ROLE, POLICY)]
    assert w.aws.roles[ROLE].policies[POLICY] == policy_of(("photos", "", Access.UPLOAD))
    assert w.grant_of(grant.grant_id).state is GrantState.ACTIVE


def test_converging_a_converged_instance_changes_nothing(w: World) -> None:
    w.handle(grant_command())
    calls, audit = list(w.aws.calls), w.db.audit_actions()

    w.converge(INSTANCE, "reconciler")
    w.converge(OTHER_INSTANCE, "reconciler")

    assert w.aws.calls == calls
    assert w.db.audit_actions() == audit


def test_a_stray_role_in_the_managed_profile_is_replaced(w: World) -> None:
    tags = {"managed-by": "accessbroker"}
    w.aws.profiles[ROLE] = FakeProfile(ROLE, "/accessbroker/", tags, roles=["old-role"])

    w.handle(grant_command())

    assert w.aws.profiles[ROLE].roles == [ROLE]
    assert ("remove_role_from_instance_profile", ROLE, "old-role") in w.aws.calls
    assert w.aws.writes("create_instance_profile") == []


def test_concurrent_grants_for_one_instance_lose_no_statement(w: World) -> None:
    buckets = [f"bucket-{n}" for n in range(8)]
    start = threading.Barrier(len(buckets))

    def grant(bucket: str) -> Grant:
        start.wait()
        return w.handle(grant_command(bucket, Access.READ_WRITE)).grant

    with ThreadPoolExecutor(len(buckets)) as pool:
        grants = list(pool.map(grant, buckets))

    assert all(g.state is GrantState.ACTIVE for g in grants)
    assert len({g.grant_id for g in grants}) == len(buckets)
    assert list(w.aws.roles) == [ROLE]
    assert w.aws.roles[ROLE].policies[POLICY] == policy_of(
        *[(b, "", Access.READ_WRITE) for b in buckets]
    )
    assert len(w.aws.writes("create_role")) == 1
    assert len(w.aws.writes("associate")) == 1
    assert {g.state for g in w.db.grants()} == {GrantState.ACTIVE}


def test_concurrent_grants_for_different_instances_each_converge(w: World) -> None:
    instances = [INSTANCE, OTHER_INSTANCE] * 3
    buckets = [f"bucket-{n}" for n in range(len(instances))]

    with ThreadPoolExecutor(len(instances)) as pool:
        grants = list(
            pool.map(
                lambda i, b: w.handle(grant_command(b, instance_id=i)).grant,
                instances,
                buckets,
            )
        )

    assert {g.state for g in grants} == {GrantState.ACTIVE}
    for instance in (INSTANCE, OTHER_INSTANCE):
        mine = [(g.scope.bucket, "", Access.UPLOAD) for g in grants if g.instance_id == instance]
        role = w.aws.roles[f"accessbroker-{instance}"]
        assert role.policies[POLICY] == policy_of(*mine)


def test_dry_run_of_a_pending_grant_only_reports_the_remaining_steps(w: World) -> None:
    w.aws.fail("associate", AwsUnavailable("EC2 did not answer"))
    with pytest.raises(AwsUnavailable):
        w.handle(grant_command())
    calls, before = list(w.aws.calls), w.db.snapshot()

    result = w.handle(grant_command(dry_run=True))

    assert w.aws.calls == calls, "a dry run never writes to AWS"
    assert w.db.snapshot() == before
    assert result.grant.state is GrantState.PENDING
    assert result.planned_changes == (
        f"associate instance profile {ROLE} with instance {INSTANCE}",
    )


def test_revoking_a_pending_grant_tears_down_what_was_built(w: World) -> None:
    w.aws.fail("associate", AwsUnavailable("EC2 did not answer"))
    with pytest.raises(AwsUnavailable):
        w.handle(grant_command())
    [pending] = w.db.grants()

    revoked = w.handle(RevokeAccess(grant_id=pending.grant_id)).grant

    assert revoked.state is GrantState.REVOKED
    assert (w.aws.roles, w.aws.profiles, w.aws.associations) == ({}, {}, {})
    assert settling(w) == []


def test_retrying_a_revocation_finishes_it(w: World) -> None:
    grant = w.handle(grant_command()).grant
    w.aws.fail("disassociate", AwsUnavailable("EC2 did not answer"))
    with pytest.raises(AwsUnavailable):
        w.handle(RevokeAccess(grant_id=grant.grant_id, idempotency_key="r"))
    assert w.grant_of(grant.grant_id).state is GrantState.REVOKING

    revoked = w.handle(RevokeAccess(grant_id=grant.grant_id, idempotency_key="r")).grant

    assert (revoked.state, revoked.failure_reason) == (GrantState.REVOKED, "")
    assert (w.aws.roles, w.aws.profiles, w.aws.associations) == ({}, {}, {})
    assert w.db.audit_actions().count("grant.revoke_requested") == 1


def test_a_permanently_failed_grant_leaves_no_permission_in_aws(w: World) -> None:
    w.aws.fail("associate", AwsRejected("UnauthorizedOperation"))
    with pytest.raises(AwsRejected):
        w.handle(grant_command())
    assert [g.state for g in w.db.grants()] == [GrantState.FAILED]

    assert ROLE not in w.aws.roles
    assert w.aws.profiles == {}
    assert w.aws.associations == {}


def test_the_instance_record_claims_only_the_policy_aws_holds(w: World) -> None:
    w.aws.fail("put_role_policy", AwsUnavailable("Throttling"))
    with pytest.raises(AwsUnavailable):
        w.handle(grant_command("photos"))

    with w.db() as uow:
        interrupted = uow.instances.get(at_home(INSTANCE))
    assert interrupted is not None
    assert interrupted.resources.role_arn, "the role was created before the failure"
    assert interrupted.policy_document == ""

    w.converge(INSTANCE, "system")

    with w.db() as uow:
        finished = uow.instances.get(at_home(INSTANCE))
    assert finished is not None
    assert json.loads(finished.policy_document) == policy_of(("photos", "", Access.UPLOAD))


def test_a_change_made_by_a_killed_convergence_enters_the_trail_as_found(w: World) -> None:
    w.aws.fail("put_role_policy", AwsUnavailable("connection dropped"))
    with pytest.raises(AwsUnavailable):
        w.handle(grant_command("photos"))
    # As if the process had died right after CreateRole: AWS holds the role, no record does.
    with w.db() as uow:
        record = uow.instances.get(at_home(INSTANCE))
        assert record is not None
        uow.instances.save(replace(record, resources=InstanceResources()))
        uow.commit()
    audited = len(w.db.snapshot().audit)

    w.converge(INSTANCE, "system")

    steps = [e for e in w.db.snapshot().audit[audited:] if e.action.startswith("aws.")]
    assert [e.action for e in steps][:2] == ["aws.create_role", "aws.put_policy"]
    assert "found done in AWS" in steps[0].detail["found"]
    assert "found" not in steps[1].detail
    assert w.db.grants()[0].state is GrantState.ACTIVE


TEAM_ONLY = Boundaries({HOME_ACCOUNT: BoundaryReach.of(boundary_document(["team-*"]))})


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_grant_the_boundary_would_cut_is_refused_and_nothing_is_written(
    w: World, dry_run: bool
) -> None:
    bounded = w.with_boundaries(TEAM_ONLY)

    with pytest.raises(OutsideBoundary, match="s3:PutObject on arn:aws:s3:::photos/\\*"):
        bounded.handle(grant_command("photos", dry_run=dry_run))

    assert w.db.grants() == []
    # Refused before anything of IAM is read (a grant looks its instance up first).
    assert set(w.aws.entered) <= {"find_instance"}


def test_a_grant_inside_the_boundary_is_carried_out(w: World) -> None:
    granted = w.with_boundaries(TEAM_ONLY).handle(grant_command("team-photos")).grant

    assert granted.state is GrantState.ACTIVE


def test_roles_are_created_with_the_permissions_boundary(w: World) -> None:
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/accessbroker-boundary"
    deps = w.with_options(permissions_boundary_arn=boundary)

    deps.handle(grant_command("photos"))

    assert w.aws.roles[ROLE].boundary == boundary


def test_without_a_boundary_setting_roles_get_none(w: World) -> None:
    w.handle(grant_command("photos"))
    assert w.aws.roles[ROLE].boundary == ""
