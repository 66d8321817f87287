"""reconcile_settling finishes what an interrupted or postponed convergence left."""

import pytest

from broker.domain.access import GrantState
from broker.domain.audit import SYSTEM_ACTOR
from broker.domain.errors import AwsUnavailable
from broker.service.commands import FinishSettling, RevokeAccess
from tests.places import at_home
from tests.unit.service.fakes import INSTANCE, OTHER_INSTANCE, ROLE, World, grant_command

# The instances that exist in the world `w` (tests/unit/conftest.py).
INSTANCES = (INSTANCE, OTHER_INSTANCE)


def test_postponed_grants_and_revocations_are_finished_by_the_system(w: World) -> None:
    w.aws.fail("associate", AwsUnavailable("RequestLimitExceeded"))
    with pytest.raises(AwsUnavailable):
        w.handle(grant_command("photos"))
    revoked_later = w.handle(grant_command("logs", instance_id=OTHER_INSTANCE)).grant
    w.aws.fail("delete_role", AwsUnavailable("Throttling"))
    with pytest.raises(AwsUnavailable):
        w.handle(RevokeAccess(grant_id=revoked_later.grant_id))
    assert {g.state for g in w.db.grants()} == {GrantState.PENDING, GrantState.REVOKING}
    audited_before = len(w.db.snapshot().audit)

    unfinished = w.handle(FinishSettling())

    assert unfinished == []
    assert {g.instance_id: g.state for g in w.db.grants()} == {
        INSTANCE: GrantState.ACTIVE,
        OTHER_INSTANCE: GrantState.REVOKED,
    }
    assert INSTANCE in w.aws.associations and ROLE in w.aws.roles
    settling = w.db.snapshot().audit[audited_before:]
    # The sweep works on both instances at once: in either order.
    assert sorted(e.action for e in settling if e.action.startswith("grant.")) == [
        "grant.active",
        "grant.revoked",
    ]
    assert {e.actor for e in settling} == {SYSTEM_ACTOR}


def test_an_instance_that_still_fails_is_reported_and_kept_for_the_next_sweep(w: World) -> None:
    w.aws.fail("associate", AwsUnavailable("RequestLimitExceeded"), times=2)
    with pytest.raises(AwsUnavailable):
        w.handle(grant_command("photos"))

    assert w.handle(FinishSettling()) == [at_home(INSTANCE)]
    [waiting] = w.db.grants()
    assert waiting.state is GrantState.PENDING
    assert "RequestLimitExceeded" in waiting.failure_reason

    assert w.handle(FinishSettling()) == []
    assert w.db.grants()[0].state is GrantState.ACTIVE


def test_nothing_settling_means_no_aws_calls(w: World) -> None:
    w.handle(grant_command("photos"))
    writes_before = list(w.aws.calls)

    assert w.handle(FinishSettling()) == []
    assert w.aws.calls == writes_before
