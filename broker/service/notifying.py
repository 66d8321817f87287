"""Delivering notifications: each destination is sent the notified audit events after the last
one it took, in order, one at a time, each recorded as delivered once the destination took it.

A failure stops the pass at that event, recorded with why: the next pass (after a backoff the
caller keeps) starts again there, so a destination that was down gets every event, in order,
once it is back. A destination seen for the first time starts after the newest event: it hears
of what happens from when it was configured. Each destination is delivered to under a lock of
its own, so replicas never send one event twice at once.
"""

from dataclasses import dataclass, replace

from broker.domain.notifications import NOTIFIED_ACTIONS, DeliveryFailed, Destination, delivery
from broker.service.commands import (
    DeliverNotifications,
    DeliveryReport,
    DestinationStatus,
    ListDeliveries,
    TrackDestinations,
)
from broker.service.messagebus import Context
from broker.service.ports import (
    AuditFilter,
    Clock,
    DeliveryState,
    InstanceLocks,
    UnitOfWorkFactory,
    WebhookPoster,
)

NOTIFIED = AuditFilter(actions=frozenset(NOTIFIED_ACTIONS))
# Events read from the trail at a time.
BATCH = 100


@dataclass(frozen=True)
class Notifications:
    """The configured destinations, and the secret webhook deliveries are signed with."""

    destinations: tuple[Destination, ...] = ()
    secret: bytes = b""

    def named(self, key: str) -> Destination:
        return next(d for d in self.destinations if d.key == key)


def deliver_notifications(
    command: DeliverNotifications,
    context: Context,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    locks: InstanceLocks,
    poster: WebhookPoster,
    notifications: Notifications,
) -> DeliveryReport:
    destination = notifications.named(command.destination)
    with locks.hold(f"notify:{destination.key}"):
        state = _state(uow, destination)
        delivered = 0
        while True:
            with uow(read_only=True) as unit:
                events = unit.audit.list(NOTIFIED, state.delivered_through, BATCH).items
            if not events:
                return DeliveryReport(delivered, 0, state)
            for event in events:
                sent = delivery(destination, event, notifications.secret, clock.now())
                try:
                    poster.post(destination.url, sent.body, sent.headers)
                except DeliveryFailed as failure:
                    state = _record(uow, _failed(state, str(failure), clock))
                    return DeliveryReport(delivered, _pending(uow, state), state)
                done = DeliveryState(destination.key, event.event_id, last_attempt_at=clock.now())
                state = _record(uow, done)
                delivered += 1


def track_destinations(
    command: TrackDestinations,
    context: Context,
    *,
    uow: UnitOfWorkFactory,
    notifications: Notifications,
) -> None:
    for destination in notifications.destinations:
        _state(uow, destination)


def _state(uow: UnitOfWorkFactory, destination: Destination) -> DeliveryState:
    with uow() as unit:
        state = unit.deliveries.get(destination.key)
        if state is None:
            state = DeliveryState(destination.key, unit.audit.last_event_id())
            unit.deliveries.save(state)
            unit.commit()
    return state


def _failed(state: DeliveryState, error: str, clock: Clock) -> DeliveryState:
    return replace(
        state, failures=state.failures + 1, last_error=error, last_attempt_at=clock.now()
    )


def _record(uow: UnitOfWorkFactory, state: DeliveryState) -> DeliveryState:
    with uow() as unit:
        unit.deliveries.save(state)
        unit.commit()
    return state


def _pending(uow: UnitOfWorkFactory, state: DeliveryState) -> int:
    with uow(read_only=True) as unit:
        return unit.audit.count(NOTIFIED, state.delivered_through)


def list_deliveries(
    command: ListDeliveries,
    context: Context,
    *,
    uow: UnitOfWorkFactory,
    notifications: Notifications,
) -> list[DestinationStatus]:
    """Each destination: how far it has been sent, how many events wait, its last error."""
    statuses = []
    with uow(read_only=True) as unit:
        for destination in notifications.destinations:
            state = unit.deliveries.get(destination.key)
            pending = unit.audit.count(NOTIFIED, state.delivered_through) if state else 0
            statuses.append(DestinationStatus(destination, state, pending))
    return statuses
