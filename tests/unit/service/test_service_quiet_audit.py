"""The audit trail records changes, not repetitions: drift left unrepaired, or a grant postponed,
is audited when it starts, when its reason changes and when it ends, not at every pass."""

import pytest

from broker.domain.access import GrantState
from broker.domain.errors import AwsUnavailable
from broker.service.commands import RepairDrift
from tests.unit.service.fakes import INSTANCE, POLICY, ROLE, World, grant_command, world

THROTTLED = AwsUnavailable("AWS PutRolePolicy failed: Throttling")
LATE = "i-0aaaaaaaaaaaaaaa1"


@pytest.fixture
def w() -> World:
    w = world(INSTANCE)
    w.handle(grant_command("photos"))
    return w


def drift_actions(w: World) -> list[str]:
    return [a for a in w.db.audit_actions() if a.startswith("drift.")]


def test_unrepaired_drift_is_audited_when_found_when_its_reason_changes_and_when_repaired(
    w: World,
) -> None:
    w.aws.roles[ROLE].policies.clear()
    w.aws.fail("put_role_policy", THROTTLED, times=100)
    for _ in range(3):
        w.handle(RepairDrift())
    quiet = drift_actions(w)
    w.aws.recover("put_role_policy")
    w.aws.fail("put_role_policy", AwsUnavailable("AWS PutRolePolicy failed: 503"), times=100)
    w.handle(RepairDrift())  # failing for another reason
    w.handle(RepairDrift())
    w.aws.recover("put_role_policy")

    w.handle(RepairDrift())  # repaired

    assert quiet == ["drift.detected", "drift.repair_failed"]
    assert drift_actions(w) == [*quiet, "drift.repair_failed", "drift.repaired"]
    assert POLICY in w.aws.roles[ROLE].policies


def test_drift_undone_by_someone_else_is_audited_as_resolved(w: World) -> None:
    removed = dict(w.aws.roles[ROLE].policies)
    w.aws.roles[ROLE].policies.clear()
    w.aws.fail("put_role_policy", THROTTLED, times=100)
    w.handle(RepairDrift())
    w.aws.roles[ROLE].policies.update(removed)  # put back by hand

    w.handle(RepairDrift())
    w.handle(RepairDrift())

    assert drift_actions(w) == ["drift.detected", "drift.repair_failed", "drift.resolved"]


def test_a_grant_postponed_again_for_the_same_reason_is_audited_once(w: World) -> None:
    w.aws.instances.add(LATE)
    w.aws.fail("associate", AwsUnavailable("EC2 did not answer"), times=100)
    with pytest.raises(AwsUnavailable):
        w.handle(grant_command(instance_id=LATE))
    for _ in range(2):  # the sweep's retries, failing the same way
        with pytest.raises(AwsUnavailable):
            w.converge(LATE)
    w.aws.recover("associate")

    w.converge(LATE)

    actions = w.db.audit_actions()
    assert actions.count("grant.retry_later") == 1
    assert actions[-1] == "grant.active"
    assert [g.state for g in w.db.grants()] == [GrantState.ACTIVE, GrantState.ACTIVE]
