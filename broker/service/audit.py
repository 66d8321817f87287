"""Small helpers that phrase audit events the same way everywhere."""

from datetime import datetime
from typing import Any

from broker.domain.audit import NewAuditEvent, Outcome
from broker.domain.grants import Grant
from broker.service.ports import Clock


def grant_event(
    clock: Clock, actor: str, action: str, grant: Grant, **detail: Any
) -> NewAuditEvent:
    return NewAuditEvent(
        time=clock.now(),
        actor=actor,
        action=action,
        outcome=Outcome.ERROR if grant.failure_reason else Outcome.SUCCESS,
        instance_id=grant.instance_id,
        grant_id=grant.grant_id,
        detail={
            "state": grant.state.value,
            "bucket": grant.scope.bucket,
            "prefix": grant.scope.prefix,
            "access": grant.scope.access.value,
            **({"failure_reason": grant.failure_reason} if grant.failure_reason else {}),
            **detail,
        },
    )


def extension_event(
    clock: Clock, actor: str, before: Grant, after: Grant, reason: str = ""
) -> NewAuditEvent:
    """A grant's expiry moved later: from when to when (None: never expires)."""
    return grant_event(
        clock,
        actor,
        "grant.extended",
        after,
        old_expires_at=_iso(before.expires_at),
        new_expires_at=_iso(after.expires_at),
        **({"reason": reason} if reason else {}),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def rejection_event(
    clock: Clock, actor: str, action: str, instance_id: str, reason: str, **detail: Any
) -> NewAuditEvent:
    return NewAuditEvent(
        time=clock.now(),
        actor=actor,
        action=action,
        outcome=Outcome.DENIED,
        instance_id=instance_id,
        detail={"reason": reason, **detail},
    )
