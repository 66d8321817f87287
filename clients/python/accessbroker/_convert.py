"""Translation between the generated protobuf messages and the SDK's types."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from accessbroker.models import (
    Access,
    AccessDecision,
    Approval,
    AuditEvent,
    Drift,
    DriftKind,
    Grant,
    GrantResult,
    GrantState,
    InstanceAccess,
    NotificationDestination,
)
from accessbroker.v1 import broker_pb2 as pb

ACCESS_TO_PROTO: dict[Access, "pb.Access.ValueType"] = {
    Access.UPLOAD: pb.ACCESS_UPLOAD,
    Access.READ: pb.ACCESS_READ,
    Access.READ_WRITE: pb.ACCESS_READ_WRITE,
    Access.LIST: pb.ACCESS_LIST,
}
_ACCESS_FROM_PROTO = {int(v): k for k, v in ACCESS_TO_PROTO.items()}
STATE_TO_PROTO: dict[GrantState, "pb.GrantState.ValueType"] = {
    GrantState.PENDING: pb.GRANT_STATE_PENDING,
    GrantState.ACTIVE: pb.GRANT_STATE_ACTIVE,
    GrantState.FAILED: pb.GRANT_STATE_FAILED,
    GrantState.REVOKING: pb.GRANT_STATE_REVOKING,
    GrantState.REVOKED: pb.GRANT_STATE_REVOKED,
    GrantState.EXPIRED: pb.GRANT_STATE_EXPIRED,
    GrantState.AWAITING_APPROVAL: pb.GRANT_STATE_AWAITING_APPROVAL,
    GrantState.DENIED: pb.GRANT_STATE_DENIED,
}
_STATE_FROM_PROTO = {int(v): k for k, v in STATE_TO_PROTO.items()}
_DRIFT_KIND_FROM_PROTO: dict[int, DriftKind] = {
    pb.DRIFT_KIND_ROLE: DriftKind.ROLE,
    pb.DRIFT_KIND_TRUST_POLICY: DriftKind.TRUST_POLICY,
    pb.DRIFT_KIND_POLICY: DriftKind.POLICY,
    pb.DRIFT_KIND_EXTRA_POLICY: DriftKind.EXTRA_POLICY,
    pb.DRIFT_KIND_PROFILE: DriftKind.PROFILE,
    pb.DRIFT_KIND_ROLE_IN_PROFILE: DriftKind.ROLE_IN_PROFILE,
    pb.DRIFT_KIND_ASSOCIATION: DriftKind.ASSOCIATION,
    pb.DRIFT_KIND_FOREIGN_ASSOCIATION: DriftKind.FOREIGN_ASSOCIATION,
    pb.DRIFT_KIND_INSTANCE_GONE: DriftKind.INSTANCE_GONE,
    pb.DRIFT_KIND_UNNEEDED: DriftKind.UNNEEDED,
    pb.DRIFT_KIND_BOUNDARY: DriftKind.BOUNDARY,
}


K = TypeVar("K", Access, GrantState, DriftKind)


def _known(values: dict[int, K], number: int, what: str) -> K:
    try:
        return values[number]
    except KeyError:
        raise ValueError(
            f"the broker sent {what} {number}, which this client does not know; "
            "upgrade accessbroker-client"
        ) from None


def ttl_to_proto(ttl: timedelta | float | None) -> Duration | None:
    """A ttl given as a timedelta or as seconds."""
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds <= 0:
        raise ValueError(f"ttl must be positive, not {ttl!r}")
    duration = Duration()
    duration.FromTimedelta(timedelta(seconds=seconds))
    return duration


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _policy(document: str) -> dict[str, Any] | None:
    return json.loads(document) if document else None


def grant_from_proto(message: pb.Grant) -> Grant:
    return Grant(
        grant_id=message.grant_id,
        instance_id=message.instance_id,
        bucket=message.bucket,
        prefix=message.prefix,
        access=_known(_ACCESS_FROM_PROTO, message.access, "access level"),
        state=_known(_STATE_FROM_PROTO, message.state, "grant state"),
        role_name=message.role_name,
        role_arn=message.role_arn,
        instance_profile_name=message.instance_profile_name,
        instance_profile_arn=message.instance_profile_arn,
        association_id=message.association_id,
        created_at=_time(message.created_at),
        updated_at=_time(message.updated_at),
        expires_at=_time(message.expires_at) if message.HasField("expires_at") else None,
        requested_by=message.requested_by,
        reason=message.reason,
        failure_reason=message.failure_reason,
        approvers=tuple(message.approvers),
        approvals_required=message.approvals_required,
        approvals=tuple(_approval(a) for a in message.approvals),
        account=message.account,
        region=message.region,
    )


def _approval(message: pb.Approval) -> Approval:
    return Approval(
        approver=message.approver,
        time=_time(message.time),
        reason=message.reason,
        ttl=message.ttl.ToTimedelta() if message.HasField("ttl") else None,
    )


def grant_result_from_proto(message: pb.GrantAccessResponse) -> GrantResult:
    return GrantResult(
        grant=grant_from_proto(message.grant),
        policy=_policy(message.policy_document),
        planned_changes=list(message.planned_changes),
        covered_by=message.covered_by,
    )


def approval_result_from_proto(message: pb.ApproveGrantResponse) -> GrantResult:
    return GrantResult(
        grant=grant_from_proto(message.grant),
        policy=_policy(message.policy_document),
        notice=message.notice,
    )


def instance_access_from_proto(message: pb.InstanceAccess) -> InstanceAccess:
    return InstanceAccess(
        instance_id=message.instance_id,
        role_name=message.role_name,
        role_arn=message.role_arn,
        instance_profile_name=message.instance_profile_name,
        instance_profile_arn=message.instance_profile_arn,
        association_id=message.association_id,
        policy=_policy(message.policy_document),
        grants=[grant_from_proto(g) for g in message.grants],
        account=message.account,
        region=message.region,
    )


def event_from_proto(message: pb.AuditEvent) -> AuditEvent:
    return AuditEvent(
        event_id=message.event_id,
        time=_time(message.time),
        actor=message.actor,
        action=message.action,
        grant_id=message.grant_id,
        instance_id=message.instance_id,
        outcome=message.outcome,
        detail=json.loads(message.detail) if message.detail else {},
    )


def drift_from_proto(message: pb.Drift) -> Drift:
    return Drift(
        instance_id=message.instance_id,
        kind=_known(_DRIFT_KIND_FROM_PROTO, message.kind, "drift kind"),
        expected=message.expected,
        actual=message.actual,
        repaired=message.repaired,
        account=message.account,
        region=message.region,
    )


def destination_from_proto(message: pb.NotificationDestination) -> NotificationDestination:
    return NotificationDestination(
        kind=message.kind,
        key=message.key,
        url=message.url,
        delivered_through_event_id=message.delivered_through_event_id,
        pending_events=message.pending_events,
        failures=message.failures,
        last_error=message.last_error,
        last_attempt_at=_time(message.last_attempt_at)
        if message.HasField("last_attempt_at")
        else None,
    )


def decision_from_proto(message: pb.AccessDecision) -> AccessDecision:
    return AccessDecision(
        allowed=message.allowed,
        reason=message.reason,
        rule=message.rule or None,
        ttl=message.ttl.ToTimedelta() if message.HasField("ttl") else None,
        approvers=tuple(message.approvers),
        approvals_required=message.approvals_required,
    )
