"""A caller's deadline passing mid-convergence: the caller hears it and the grant waits."""

import threading
import time

import pytest

from broker.domain.access import GrantState
from broker.domain.errors import DeadlineExceeded
from broker.service.commands import FinishSettling, RevokeAccess
from broker.service.deadlines import deadline_in, seconds_left
from tests.unit.service.fakes import INSTANCE, World, grant_command

PASSED = "the caller's deadline passed during AWS AssociateIamInstanceProfile"


def test_a_grant_whose_deadline_passes_stays_pending_with_the_reason(w: World) -> None:
    w.aws.fail("associate", DeadlineExceeded(PASSED))

    with pytest.raises(DeadlineExceeded):
        w.handle(grant_command())

    [waiting] = w.db.grants()
    assert (waiting.state, waiting.failure_reason) == (GrantState.PENDING, PASSED)
    assert w.db.audit_actions()[-1] == "grant.retry_later"
    assert INSTANCE not in w.aws.associations

    assert w.handle(FinishSettling()) == []
    [done] = w.db.grants()
    assert (done.state, done.failure_reason) == (GrantState.ACTIVE, "")
    assert INSTANCE in w.aws.associations


def test_a_revocation_whose_deadline_passes_stays_revoking(w: World) -> None:
    granted = w.handle(grant_command()).grant
    w.aws.fail("delete_role", DeadlineExceeded("the caller's deadline passed during DeleteRole"))

    with pytest.raises(DeadlineExceeded):
        w.handle(RevokeAccess(grant_id=granted.grant_id))

    [waiting] = w.db.grants()
    assert waiting.state is GrantState.REVOKING
    assert "DeleteRole" in waiting.failure_reason

    assert w.handle(FinishSettling()) == []
    assert w.db.grants()[0].state is GrantState.REVOKED
    assert w.aws.roles == {}


def test_no_deadline_by_default() -> None:
    assert seconds_left() is None


def test_a_deadline_counts_down_and_ends_with_its_block() -> None:
    with deadline_in(10):
        left = seconds_left()
        assert left is not None and 9 < left <= 10
        with deadline_in(0.01):
            time.sleep(0.02)
            inner = seconds_left()
            assert inner is not None and inner < 0
        assert seconds_left() == pytest.approx(left, abs=0.5)
    assert seconds_left() is None


def test_a_deadline_belongs_to_the_thread_that_set_it() -> None:
    seen: list[float | None] = []
    with deadline_in(10):
        other = threading.Thread(target=lambda: seen.append(seconds_left()))
        other.start()
        other.join()
    assert seen == [None], "the background sweep never inherits a caller's deadline"
