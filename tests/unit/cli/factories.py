"""SDK values for brokerctl's tests."""

from datetime import UTC, datetime, timedelta

from accessbroker.models import Access, AuditEvent, Grant, GrantState

T0 = datetime(2026, 11, 28, 4, 11, 22, 123456, tzinfo=UTC)
INSTANCE = "i-0123456789abcdef0"
OTHER_INSTANCE = "i-0fedcba9876543210"


def make_grant(
    grant_id: str = "11111111-1111-1111-1111-111111111111",
    *,
    instance_id: str = INSTANCE,
    bucket: str = "ci-artifacts",
    prefix: str = "builds/",
    access: Access = Access.UPLOAD,
    state: GrantState = GrantState.ACTIVE,
    created_at: datetime = T0,
    expires_at: datetime | None = None,
) -> Grant:
    return Grant(
        grant_id=grant_id,
        instance_id=instance_id,
        bucket=bucket,
        prefix=prefix,
        access=access,
        state=state,
        role_name=f"accessbroker-{instance_id}",
        role_arn=f"arn:aws:iam::123456789012:role/accessbroker/accessbroker-{instance_id}",
        instance_profile_name=f"accessbroker-{instance_id}",
        instance_profile_arn="",
        association_id="iip-assoc-0123",
        created_at=created_at,
        updated_at=created_at + timedelta(seconds=1),
        expires_at=expires_at,
        requested_by="anonymous",
        reason="because",
        failure_reason="",
    )


def make_event(event_id: int = 7, grant_id: str = "") -> AuditEvent:
    return AuditEvent(
        event_id=event_id,
        time=T0,
        actor="anonymous",
        action="grant.active",
        grant_id=grant_id,
        instance_id=INSTANCE,
        outcome="success",
        detail={"bucket": "ci-artifacts", "nested": {"n": 1}},
    )
