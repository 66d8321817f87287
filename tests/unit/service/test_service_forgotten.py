"""Instances EC2 has forgotten (about an hour after termination, or never known where they were
granted): noted when first found missing, taken for gone after BROKER_GONE_AFTER."""

from datetime import timedelta

import pytest

from broker.domain.access import GrantState
from broker.domain.errors import InstanceNotFound
from broker.service.commands import Reconcile, RepairDrift
from tests.places import at_home
from tests.unit.service.fakes import INSTANCE, ROLE, START, World, grant_command, world

GONE_AFTER = timedelta(hours=2)


@pytest.fixture
def w() -> World:
    w = world(INSTANCE).with_options(gone_after=GONE_AFTER)
    w.handle(grant_command("photos"))
    return w


def missing_since(w: World) -> object:
    with w.db(read_only=True) as uow:
        return uow.instances.missing_since(at_home(INSTANCE))


def test_a_forgotten_instance_is_noted_then_taken_for_gone_after_the_wait(w: World) -> None:
    w.aws.instances.discard(INSTANCE)  # EC2 no longer knows it at all

    w.handle(RepairDrift())
    w.clock.advance(GONE_AFTER - timedelta(seconds=1))
    w.handle(RepairDrift())
    waited = [g.state for g in w.db.grants()], missing_since(w)
    w.clock.advance(timedelta(seconds=1))
    findings = w.handle(RepairDrift())

    assert waited == ([GrantState.ACTIVE], START)
    assert [(f.drift.kind.value, f.repaired) for f in findings] == [("instance_gone", True)]
    (grant,) = w.db.grants()
    assert grant.state is GrantState.REVOKED
    assert ROLE not in w.aws.roles and ROLE not in w.aws.profiles
    assert missing_since(w) is None
    requested = [e for e in w.db.snapshot().audit if e.action == "grant.revoke_requested"]
    assert requested[0].detail["reason"] == f"instance {INSTANCE} no longer exists"


def test_an_instance_found_again_starts_the_wait_anew(w: World) -> None:
    w.aws.instances.discard(INSTANCE)
    w.handle(RepairDrift())
    w.aws.instances.add(INSTANCE)
    w.handle(RepairDrift())
    cleared = missing_since(w)
    w.aws.instances.discard(INSTANCE)
    w.clock.advance(GONE_AFTER)

    w.handle(RepairDrift())

    assert cleared is None
    assert missing_since(w) == START + GONE_AFTER
    assert [g.state for g in w.db.grants()] == [GrantState.ACTIVE]


def test_a_dry_run_on_a_forgotten_instance_is_not_found_and_notes_nothing(w: World) -> None:
    w.aws.instances.discard(INSTANCE)

    with pytest.raises(InstanceNotFound):
        w.handle(Reconcile(instance_id=INSTANCE, dry_run=True))

    assert missing_since(w) is None
