"""The notifier in the background: it records where a new destination starts before anything
is served, delivers what happens after, counts it in the metrics, and backs off from a
destination that fails."""

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from broker.domain.notifications import Destination, DestinationKind
from broker.entrypoints.metrics import NotificationMetrics
from broker.entrypoints.notifier import Notifier
from broker.service.notifying import Notifications
from tests.unit.service.fakes import INSTANCE, FakePoster, World, grant_command, world
from tests.waiting import wait_for, wait_until

HOOK = Destination(DestinationKind.WEBHOOK, "http://hooks.test/a", "webhook:a", "http://…")


@pytest.fixture
def poster() -> FakePoster:
    return FakePoster()


@pytest.fixture
def w(poster: FakePoster) -> World:
    return (
        world(INSTANCE).with_options(notifications=Notifications((HOOK,), b"k")).with_poster(poster)
    )


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def notifier(w: World, registry: CollectorRegistry) -> Iterator[Notifier]:
    running = Notifier(w.bus, [HOOK.key], 1.0, NotificationMetrics(registry))
    w.handle(grant_command("before"))  # before the notifier starts: not delivered
    running.start()
    yield running
    running.stop(timeout=30)


def delivered(registry: CollectorRegistry, outcome: str) -> float:
    labels = {"destination": HOOK.key, "outcome": outcome}
    return registry.get_sample_value("accessbroker_notification_deliveries_total", labels) or 0


def test_what_happens_after_it_starts_is_delivered_and_counted(
    w: World, poster: FakePoster, notifier: Notifier, registry: CollectorRegistry
) -> None:
    granted = w.handle(grant_command("after")).grant

    taken = wait_for(lambda: list(poster.taken), lambda got: len(got) == 2, what="deliveries")

    assert {e["grant_id"] for e in taken} == {granted.grant_id}
    wait_until(lambda: delivered(registry, "delivered") == 2, what="the deliveries counted")


def test_a_failing_destination_is_counted_and_tried_again(
    w: World, poster: FakePoster, notifier: Notifier, registry: CollectorRegistry
) -> None:
    poster.down = True
    w.handle(grant_command("after"))

    wait_until(lambda: delivered(registry, "failed") >= 2, what="failures, retried")
    pending = registry.get_sample_value(
        "accessbroker_notifications_pending", {"destination": HOOK.key}
    )
    poster.down = False

    assert pending == 2
    wait_for(lambda: list(poster.taken), lambda got: len(got) == 2, what="the catch-up")
