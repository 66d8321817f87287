"""Translation between protobuf messages and domain objects, and opaque page tokens."""

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from accessbroker.v1 import broker_pb2 as pb
from broker.domain.access import Access, GrantState
from broker.domain.approval import Approval
from broker.domain.audit import AuditEvent
from broker.domain.authorization import Decision
from broker.domain.drift import DriftKind
from broker.domain.errors import FieldViolation, InvalidRequest
from broker.domain.grants import Grant
from broker.service.commands import DestinationStatus, DriftFinding

ACCESS_TO_PROTO: dict[Access, "pb.Access.ValueType"] = {
    Access.UPLOAD: pb.ACCESS_UPLOAD,
    Access.READ: pb.ACCESS_READ,
    Access.READ_WRITE: pb.ACCESS_READ_WRITE,
    Access.LIST: pb.ACCESS_LIST,
}
ACCESS_FROM_PROTO: dict[int, Access] = {int(v): k for k, v in ACCESS_TO_PROTO.items()}

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
STATE_FROM_PROTO: dict[int, GrantState] = {int(v): k for k, v in STATE_TO_PROTO.items()}

DRIFT_KIND_TO_PROTO: dict[DriftKind, "pb.DriftKind.ValueType"] = {
    DriftKind.ROLE: pb.DRIFT_KIND_ROLE,
    DriftKind.TRUST_POLICY: pb.DRIFT_KIND_TRUST_POLICY,
    DriftKind.POLICY: pb.DRIFT_KIND_POLICY,
    DriftKind.EXTRA_POLICY: pb.DRIFT_KIND_EXTRA_POLICY,
    DriftKind.PROFILE: pb.DRIFT_KIND_PROFILE,
    DriftKind.ROLE_IN_PROFILE: pb.DRIFT_KIND_ROLE_IN_PROFILE,
    DriftKind.ASSOCIATION: pb.DRIFT_KIND_ASSOCIATION,
    DriftKind.FOREIGN_ASSOCIATION: pb.DRIFT_KIND_FOREIGN_ASSOCIATION,
    DriftKind.INSTANCE_GONE: pb.DRIFT_KIND_INSTANCE_GONE,
    DriftKind.UNNEEDED: pb.DRIFT_KIND_UNNEEDED,
    DriftKind.BOUNDARY: pb.DRIFT_KIND_BOUNDARY,
}
MAX_CURSOR = 2**63 - 1


def access_from_proto(value: int) -> Access | None:
    """None for ACCESS_UNSPECIFIED or an unknown number; validation reports it."""
    return ACCESS_FROM_PROTO.get(value)


def state_from_proto(value: int) -> GrantState | None:
    if value == pb.GRANT_STATE_UNSPECIFIED:
        return None
    state = STATE_FROM_PROTO.get(value)
    if state is None:
        raise InvalidRequest([FieldViolation("state", f"unknown grant state {value}")])
    return state


def ttl_from_proto(
    request: pb.GrantAccessRequest
    | pb.ExtendGrantRequest
    | pb.ExplainAccessRequest
    | pb.ApproveGrantRequest,
) -> timedelta | None:
    """The ttl, if set; its bounds are the domain's to check (validation.ttl_problems)."""
    if not request.HasField("ttl"):
        return None
    try:
        return request.ttl.ToTimedelta()
    except (OverflowError, ValueError):
        raise InvalidRequest([FieldViolation("ttl", "is not a valid duration")]) from None


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def grant_to_proto(grant: Grant) -> pb.Grant:
    message = pb.Grant(
        grant_id=grant.grant_id,
        instance_id=grant.instance_id,
        account=grant.place.account,
        region=grant.place.region,
        bucket=grant.scope.bucket,
        prefix=grant.scope.prefix,
        access=ACCESS_TO_PROTO[grant.scope.access],
        state=STATE_TO_PROTO[grant.state],
        role_name=grant.resources.role_name,
        role_arn=grant.resources.role_arn,
        instance_profile_name=grant.resources.profile_name,
        instance_profile_arn=grant.resources.profile_arn,
        association_id=grant.resources.association_id,
        created_at=timestamp(grant.created_at),
        updated_at=timestamp(grant.updated_at),
        requested_by=grant.requested_by,
        reason=grant.reason,
        failure_reason=grant.failure_reason,
    )
    if grant.expires_at is not None:
        message.expires_at.CopyFrom(timestamp(grant.expires_at))
    if grant.approval is not None:
        _describe_approval(message, grant.approval)
    return message


def _describe_approval(message: pb.Grant, approval: Approval) -> None:
    message.approvers.extend(approval.approvers)
    message.approvals_required = approval.required
    for vote in approval.votes:
        given = message.approvals.add(
            approver=vote.approver, time=timestamp(vote.at), reason=vote.reason
        )
        if vote.ttl is not None:
            given.ttl.FromTimedelta(vote.ttl)


def event_to_proto(event: AuditEvent) -> pb.AuditEvent:
    return pb.AuditEvent(
        event_id=event.event_id,
        time=timestamp(event.time),
        actor=event.actor,
        action=event.action,
        grant_id=event.grant_id,
        instance_id=event.instance_id,
        outcome=event.outcome.value,
        detail=json.dumps(event.detail, sort_keys=True),
    )


def encode_page_token(kind: str, cursor: int | None) -> str:
    if cursor is None:
        return ""
    return base64.urlsafe_b64encode(f"{kind}:{cursor}".encode()).decode()


def decode_page_token(kind: str, token: str) -> int | None:
    """The cursor in a token from encode_page_token; an empty token is the first page."""
    if not token:
        return None
    try:
        found_kind, _, cursor = (
            base64.urlsafe_b64decode(token.encode("ascii")).decode().partition(":")
        )
        # Cursors are ids, int64 like every id of the API; a bigger one no store can even
        # compare with (SQLite refuses to bind it), and no listing ever returned it.
        if found_kind == kind and cursor.isascii() and cursor.isdigit():
            position = int(cursor)
            if position <= MAX_CURSOR:
                return position
    except (ValueError, binascii.Error, UnicodeError):
        pass
    raise InvalidRequest([FieldViolation("page_token", "is not a token this listing returned")])


def finding_to_proto(finding: DriftFinding) -> pb.Drift:
    drift = finding.drift
    return pb.Drift(
        instance_id=drift.instance_id,
        account=drift.instance.place.account,
        region=drift.instance.place.region,
        kind=DRIFT_KIND_TO_PROTO[drift.kind],
        expected=drift.expected,
        actual=drift.actual,
        repaired=finding.repaired,
    )


def destination_to_proto(status: DestinationStatus) -> pb.NotificationDestination:
    destination, state = status.destination, status.state
    message = pb.NotificationDestination(
        kind=destination.kind.value,
        key=destination.key,
        url=destination.shown,
        pending_events=status.pending,
    )
    if state is not None:
        message.delivered_through_event_id = state.delivered_through
        message.failures = state.failures
        message.last_error = state.last_error
        if state.last_attempt_at is not None:
            message.last_attempt_at.CopyFrom(timestamp(state.last_attempt_at))
    return message


def decision_to_proto(decision: Decision) -> pb.AccessDecision:
    message = pb.AccessDecision(
        allowed=decision.allowed, reason=decision.reason, rule=decision.rule
    )
    if decision.allowed and decision.ttl is not None:
        message.ttl.FromTimedelta(decision.ttl)
    if decision.approval is not None:
        message.approvers.extend(decision.approval.approvers)
        message.approvals_required = decision.approval.required
    return message
