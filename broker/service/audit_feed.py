"""follow_audit_events: the audit trail as an endless feed, for notifiers and SIEM forwarders."""

from collections.abc import Callable, Iterator

from broker.domain.audit import AuditAction, AuditEvent
from broker.domain.validation import instance_id_problems, require
from broker.service.authorization import require_admin
from broker.service.dependencies import Dependencies
from broker.service.ports import AuditFilter

BATCH = 500


def start_of_feed(deps: Dependencies, instance_id: str, after: int | None) -> int:
    """The event id a feed starts after: `after`, or the newest event when None (only events
    yet to come). Telling the caller this lets it resume without a gap even before its first
    event arrives."""
    require(
        {
            "instance_id": instance_id_problems(instance_id) if instance_id else [],
            "after_event_id": [] if after is None or after >= 0 else ["must not be negative"],
        }
    )
    if after is not None:
        return after
    with deps.uow() as uow:
        return uow.audit.last_event_id()


def follow_audit_events(
    deps: Dependencies, instance_id: str, cursor: int, idle: Callable[[], bool]
) -> Iterator[AuditEvent]:
    """The events after event id `cursor` (from start_of_feed), then each new one.

    Ids follow commit order (see AuditLog.append), so resuming after the last id seen misses
    nothing and repeats nothing. `idle` waits a while when the feed has caught up and says
    whether to go on.
    """
    where = AuditFilter(instance_id=instance_id)
    while True:
        with deps.uow() as uow:
            page = uow.audit.list(where, cursor, BATCH)
        for event in page.items:
            yield event
            cursor = event.event_id
        if page.next_cursor is None and not idle():
            return


def follow_audit_events_as(
    deps: Dependencies, actor: str, instance_id: str, cursor: int, idle: Callable[[], bool]
) -> Iterator[AuditEvent]:
    """follow_audit_events for a caller, who must still be an admin at each event: a policy
    reloaded while the feed is open takes effect on it too."""
    for event in follow_audit_events(deps, instance_id, cursor, idle):
        _require_audit_reader(deps, actor)
        yield event


def _require_audit_reader(deps: Dependencies, actor: str) -> None:
    require_admin(deps, actor, AuditAction.AUDIT_READ_DENIED, "read the audit trail")


def start_of_feed_as(deps: Dependencies, actor: str, instance_id: str, after: int | None) -> int:
    """start_of_feed for a caller: the audit trail names every caller's grants, admins only."""
    _require_audit_reader(deps, actor)
    return start_of_feed(deps, instance_id, after)
