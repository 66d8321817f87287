"""WatchAuditEvents over the fake database: replay, then new events, in order, once each."""

from collections.abc import Callable

import pytest

from broker.domain.audit import AuditEvent
from broker.domain.errors import InvalidRequest
from broker.service.commands import WatchAuditEvents
from tests.unit.service.fakes import INSTANCE, OTHER_INSTANCE, World, grant_command

# The instances that exist in the world `w` (tests/unit/conftest.py).
INSTANCES = (INSTANCE, OTHER_INSTANCE)


def _idle_running(actions: list[Callable[[], object]]) -> Callable[[], bool]:
    """An idle() that performs one action each time the feed catches up, then stops it."""
    pending = list(actions)

    def idle() -> bool:
        if not pending:
            return False
        pending.pop(0)()
        return True

    return idle


def _ids(events: list[AuditEvent]) -> list[int]:
    return [e.event_id for e in events]


def test_replays_after_the_cursor_then_follows_new_events(w: World) -> None:
    w.handle(grant_command("photos"))
    written = w.db.snapshot().audit
    cursor = written[2].event_id

    idle = _idle_running([lambda: w.handle(grant_command("logs"))])
    seen = list(w.handle(WatchAuditEvents(instance_id="", after=cursor)).follow(idle))

    everything = w.db.snapshot().audit
    assert _ids(seen) == _ids(everything)[3:]
    assert len(everything) > len(written)


def test_without_a_cursor_only_new_events_arrive(w: World) -> None:
    w.handle(grant_command("photos"))
    before = len(w.db.snapshot().audit)

    feed = w.handle(WatchAuditEvents())
    idle = _idle_running([lambda: w.handle(grant_command("logs"))])
    seen = list(feed.follow(idle))

    assert feed.start == w.db.snapshot().audit[before - 1].event_id
    assert _ids(seen) == _ids(w.db.snapshot().audit)[before:]
    assert seen, "the second grant's events should have arrived"


def test_an_instance_filter_keeps_other_instances_out(w: World) -> None:
    idle = _idle_running(
        [
            lambda: w.handle(grant_command("photos", instance_id=OTHER_INSTANCE)),
            lambda: w.handle(grant_command("photos")),
        ]
    )
    seen = list(w.handle(WatchAuditEvents(instance_id=INSTANCE, after=0)).follow(idle))

    assert seen
    assert {e.instance_id for e in seen} == {INSTANCE}


@pytest.mark.parametrize(("instance_id", "after"), [("i-bad", 0), ("", -1)])
def test_bad_arguments_are_refused(w: World, instance_id: str, after: int) -> None:
    with pytest.raises(InvalidRequest):
        w.handle(WatchAuditEvents(instance_id=instance_id, after=after))


def test_a_given_cursor_is_where_the_feed_starts(w: World) -> None:
    w.handle(grant_command("photos"))

    assert w.handle(WatchAuditEvents(instance_id=INSTANCE, after=2)).start == 2
