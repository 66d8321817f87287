"""Protobuf messages with every field set, as a broker would send them."""

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from accessbroker.v1 import broker_pb2 as pb

CREATED = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
UPDATED = datetime(2025, 3, 1, 12, 0, 5, 250000, tzinfo=UTC)
EXPIRES = datetime(2025, 3, 1, 20, 0, 0, tzinfo=UTC)
INSTANCE = "i-0123456789abcdef0"
GRANT_ID = "6f1c2a9e-0000-4000-8000-000000000001"


def stamp(moment: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(moment)
    return result


def grant_message(
    grant_id: str = GRANT_ID, state: "pb.GrantState.ValueType" = pb.GRANT_STATE_ACTIVE
) -> pb.Grant:
    return pb.Grant(
        grant_id=grant_id,
        instance_id=INSTANCE,
        bucket="reports",
        prefix="nightly/",
        access=pb.ACCESS_READ_WRITE,
        state=state,
        role_name=f"accessbroker-{INSTANCE}",
        role_arn=f"arn:aws:iam::123456789012:role/accessbroker/accessbroker-{INSTANCE}",
        instance_profile_name=f"accessbroker-{INSTANCE}",
        instance_profile_arn=(
            f"arn:aws:iam::123456789012:instance-profile/accessbroker/accessbroker-{INSTANCE}"
        ),
        association_id="iip-assoc-0123456789abcdef0",
        created_at=stamp(CREATED),
        updated_at=stamp(UPDATED),
        expires_at=stamp(EXPIRES),
        requested_by="ci-pipeline",
        reason="nightly upload",
        failure_reason="",
    )


def event_message(event_id: int, detail: str = '{"step": "role"}') -> pb.AuditEvent:
    return pb.AuditEvent(
        event_id=event_id,
        time=stamp(CREATED),
        actor="ci-pipeline",
        action="aws.role.created",
        grant_id=GRANT_ID,
        instance_id=INSTANCE,
        outcome="success",
        detail=detail,
    )
