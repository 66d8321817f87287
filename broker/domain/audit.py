"""Audit events: the durable record of every decision and every AWS change.

Every action the trail can hold is a member of AuditAction, and every event is phrased by one
of the builders below, so a reader finds the whole vocabulary of the trail in this file.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from broker.domain.access import GrantState
from broker.domain.convergence import Step, StepKind
from broker.domain.drift import Drift
from broker.domain.grants import Grant
from broker.domain.places import InstanceRef

SYSTEM_ACTOR = "system"
# Every caller, when the broker authenticates nobody (BROKER_AUTH_MODE=none).
ANONYMOUS_ACTOR = "anonymous"


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    ERROR = "error"


class AuditAction(StrEnum):
    # A grant's life: asked for, carried out or not, extended, ended.
    GRANT_REQUESTED = "grant.requested"
    GRANT_ACTIVE = "grant.active"
    GRANT_FAILED = "grant.failed"
    GRANT_RETRY_LATER = "grant.retry_later"
    GRANT_EXTENDED = "grant.extended"
    GRANT_REVOKE_REQUESTED = "grant.revoke_requested"
    GRANT_REVOKED = "grant.revoked"
    GRANT_EXPIRED = "grant.expired"
    # A request that needs approval: asked, each approval, a denial, left unanswered.
    GRANT_APPROVAL_REQUESTED = "grant.approval_requested"
    GRANT_APPROVED = "grant.approved"
    GRANT_DENIED = "grant.denied"
    GRANT_APPROVAL_EXPIRED = "grant.approval_expired"
    # Refusals, each audited before it reaches the caller.
    GRANT_REJECTED = "grant.rejected"
    GRANT_READ_DENIED = "grant.read_denied"
    GRANT_EXTEND_DENIED = "grant.extend_denied"
    GRANT_REVOKE_DENIED = "grant.revoke_denied"
    # An approval or a denial by a caller who may not decide the request.
    GRANT_DECISION_DENIED = "grant.decision_denied"
    AUDIT_READ_DENIED = "audit.read_denied"
    RECONCILE_DENIED = "reconcile.denied"
    EXPLAIN_DENIED = "access.explain_denied"
    NOTIFICATIONS_READ_DENIED = "notifications.read_denied"
    # Changes made in AWS, one per convergence step (named after StepKind).
    AWS_CREATE_ROLE = "aws.create_role"
    AWS_PUT_POLICY = "aws.put_policy"
    AWS_RESTORE_TRUST = "aws.restore_trust"
    AWS_PUT_BOUNDARY = "aws.put_boundary"
    AWS_CREATE_PROFILE = "aws.create_profile"
    AWS_ADD_ROLE_TO_PROFILE = "aws.add_role_to_profile"
    AWS_ASSOCIATE = "aws.associate"
    AWS_DISASSOCIATE = "aws.disassociate"
    AWS_REMOVE_ROLE_FROM_PROFILE = "aws.remove_role_from_profile"
    AWS_DELETE_PROFILE = "aws.delete_profile"
    AWS_DELETE_POLICY = "aws.delete_policy"
    AWS_DETACH_POLICY = "aws.detach_policy"
    AWS_DELETE_ROLE = "aws.delete_role"
    # What the sweeps find.
    DRIFT_DETECTED = "drift.detected"
    DRIFT_REPAIRED = "drift.repaired"
    DRIFT_REPAIR_FAILED = "drift.repair_failed"
    # Drift the broker could not repair (or only reports) is gone, undone by someone else.
    DRIFT_RESOLVED = "drift.resolved"
    ORPHAN_FOUND = "instance.orphan_found"


# The state a convergence settles a grant in, and the action that records it.
_SETTLED = {
    GrantState.ACTIVE: AuditAction.GRANT_ACTIVE,
    GrantState.REVOKED: AuditAction.GRANT_REVOKED,
    GrantState.EXPIRED: AuditAction.GRANT_EXPIRED,
}


def step_action(kind: StepKind) -> AuditAction:
    """The action recording a convergence step of this kind."""
    return AuditAction(f"aws.{kind.name.lower()}")


@dataclass(frozen=True)
class NewAuditEvent:
    """An event about to be written; the store gives it an id and keeps its time."""

    time: datetime
    actor: str
    action: str
    outcome: Outcome
    instance_id: str = ""
    grant_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEvent:
    event_id: int
    time: datetime
    actor: str
    action: str
    outcome: Outcome
    instance_id: str
    grant_id: str
    detail: dict[str, Any]


def grant_event(
    now: datetime, actor: str, action: AuditAction, grant: Grant, **detail: Any
) -> NewAuditEvent:
    """Something happened to a grant; the event names its scope and state as they now are."""
    return NewAuditEvent(
        time=now,
        actor=actor,
        action=action,
        outcome=Outcome.ERROR if grant.failure_reason else Outcome.SUCCESS,
        instance_id=grant.instance_id,
        grant_id=grant.grant_id,
        detail={
            **where(grant.instance),
            "state": grant.state.value,
            "bucket": grant.scope.bucket,
            "prefix": grant.scope.prefix,
            "access": grant.scope.access.value,
            "requested_by": grant.requested_by,
            **({"failure_reason": grant.failure_reason} if grant.failure_reason else {}),
            **detail,
        },
    )


def settled_event(now: datetime, actor: str, grant: Grant) -> NewAuditEvent:
    """A convergence moved the grant to its end state. Expiry is the system's decision,
    whichever caller's convergence happened to carry it out."""
    action = _SETTLED[grant.state]
    if grant.state is not GrantState.EXPIRED:
        return grant_event(now, actor, action, grant)
    assert grant.expires_at is not None, "only a grant with an expiry expires"
    return grant_event(now, SYSTEM_ACTOR, action, grant, expires_at=grant.expires_at.isoformat())


def extension_event(
    now: datetime, actor: str, before: Grant, after: Grant, reason: str = ""
) -> NewAuditEvent:
    """A grant's expiry moved later: from when to when (None: never expires)."""
    return grant_event(
        now,
        actor,
        AuditAction.GRANT_EXTENDED,
        after,
        old_expires_at=_iso(before.expires_at),
        new_expires_at=_iso(after.expires_at),
        **({"reason": reason} if reason else {}),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def refusal_event(
    now: datetime,
    actor: str,
    action: AuditAction,
    reason: str,
    *,
    instance: InstanceRef | None = None,
    grant_id: str = "",
    **detail: Any,
) -> NewAuditEvent:
    """A request refused, and why."""
    return NewAuditEvent(
        time=now,
        actor=actor,
        action=action,
        outcome=Outcome.DENIED,
        instance_id=instance.instance_id if instance else "",
        grant_id=grant_id,
        detail={"reason": reason, **(where(instance) if instance else {}), **detail},
    )


def step_event(
    now: datetime, actor: str, instance: InstanceRef, step: Step, **detail: Any
) -> NewAuditEvent:
    """A change made in AWS (or, with a `found` note, found made without a record of it)."""
    return NewAuditEvent(
        time=now,
        actor=actor,
        action=step_action(step.kind),
        outcome=Outcome.SUCCESS,
        instance_id=instance.instance_id,
        detail={"change": step.describe(), **where(instance), **detail},
    )


def drift_event(
    now: datetime, actor: str, action: AuditAction, drift: Drift, **detail: str
) -> NewAuditEvent:
    """A difference between the grants and AWS: found, repaired, or not repaired."""
    return NewAuditEvent(
        time=now,
        actor=actor,
        action=action,
        outcome=Outcome.ERROR if action is AuditAction.DRIFT_REPAIR_FAILED else Outcome.SUCCESS,
        instance_id=drift.instance_id,
        detail={
            **where(drift.instance),
            "kind": drift.kind.value,
            "expected": drift.expected,
            "actual": drift.actual,
            **detail,
        },
    )


def orphan_event(now: datetime, instance: InstanceRef) -> NewAuditEvent:
    """The sweep found the broker's resources for an instance no grant needs; it removes them."""
    return NewAuditEvent(
        time=now,
        actor=SYSTEM_ACTOR,
        action=AuditAction.ORPHAN_FOUND,
        outcome=Outcome.SUCCESS,
        instance_id=instance.instance_id,
        detail={
            "reason": "a managed role or instance profile that no grant needs",
            **where(instance),
        },
    )


def where(instance: InstanceRef) -> dict[str, str]:
    """Where the instance an event is about lives: its region, and its account unless it is the
    broker's own (so that a single-account trail reads as it always has, bar the region)."""
    place = instance.place
    return {"region": place.region} | ({} if place.is_home_account else {"account": place.account})
