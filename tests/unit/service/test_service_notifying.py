"""Delivering notifications over fakes: a destination hears of what happens from when it is
configured, in order, each event once it took it; a failure stops the pass there and is
recorded, and the next pass resumes at that event."""

import pytest

from broker.domain.notifications import Destination, DestinationKind
from broker.service.commands import DeliverNotifications, DeliveryReport, ListDeliveries
from broker.service.notifying import Notifications
from tests.unit.service.fakes import INSTANCE, FakePoster, World, grant_command, world

HOOK = Destination(
    DestinationKind.WEBHOOK, "http://hooks.test/a", "webhook:a", "http://hooks.test/…"
)


@pytest.fixture
def poster() -> FakePoster:
    return FakePoster()


@pytest.fixture
def w(poster: FakePoster) -> World:
    notifications = Notifications((HOOK,), b"secret")
    return world(INSTANCE).with_options(notifications=notifications).with_poster(poster)


def deliver(w: World) -> DeliveryReport:
    return w.handle(DeliverNotifications(destination=HOOK.key))


def test_a_destination_hears_of_what_happens_from_when_it_is_configured(
    w: World, poster: FakePoster
) -> None:
    w.handle(grant_command("before"))
    deliver(w)  # the first pass: it starts after the newest event
    granted = w.handle(grant_command("after")).grant

    report = deliver(w)

    assert [(e["type"], e["grant_id"]) for e in poster.taken] == [
        ("grant.requested", granted.grant_id),
        ("grant.active", granted.grant_id),
    ]
    assert report.delivered == 2 and report.pending == 0


def test_a_failure_stops_the_pass_and_the_next_resumes_there(w: World, poster: FakePoster) -> None:
    deliver(w)
    first = w.handle(grant_command("photos")).grant
    poster.down = True

    failed = deliver(w)
    second = w.revoke(first.grant_id)
    poster.down = False
    resumed = deliver(w)

    assert failed.state.failures == 1
    assert failed.state.last_error == "unreachable: connection refused"
    assert failed.pending == 2
    assert [e["type"] for e in poster.taken] == [
        "grant.requested",
        "grant.active",
        "grant.revoked",
    ]
    assert second.state.value == "revoked"
    assert resumed.state.failures == 0


def test_admins_see_how_each_destination_stands(w: World, poster: FakePoster) -> None:
    deliver(w)
    w.handle(grant_command("photos"))
    poster.down = True
    deliver(w)

    [status] = w.handle(ListDeliveries())

    assert status.destination == HOOK
    assert status.pending == 2
    assert status.state is not None and status.state.last_error.startswith("unreachable")
