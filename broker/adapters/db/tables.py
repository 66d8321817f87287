"""The broker's tables. Rows stay inside the adapter; repositories convert them to domain objects.

Datetime columns use SQLModel's UTCDateTime: aware datetimes are stored as UTC and come back
aware in UTC, also from SQLite, which keeps no offset. Repositories put UTC into rows (see
`utc`) so rows served from the session's identity map read the same as rows loaded.
Enums are stored as their string values so adding a state needs no database enum migration.
"""

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from broker.domain.grants import InstanceResources

# Longest values the domain and AWS allow; see broker.domain.validation and IAM's limits.
INSTANCE_ID_LENGTH = 32
# An account id (12 digits; "" for the broker's own account) and a region name.
ACCOUNT_LENGTH = 12
REGION_LENGTH = 32
GRANT_ID_LENGTH = 64
BUCKET_LENGTH = 63
PREFIX_LENGTH = 1024  # characters: a prefix is at most 1024 bytes of UTF-8
ENUM_LENGTH = 16
# "awaiting_approval" outgrew ENUM_LENGTH (migration 0005).
STATE_LENGTH = 32
# "webhook:" and 16 hex digits of the URL's digest (broker.adapters.config.notifications).
DESTINATION_LENGTH = 64
PRINCIPAL_LENGTH = 256
REASON_LENGTH = 1024
IAM_NAME_LENGTH = 128
ARN_LENGTH = 2048
ASSOCIATION_ID_LENGTH = 64
ACTION_LENGTH = 64
IDEMPOTENCY_KEY_LENGTH = 128
OPERATION_LENGTH = 64
FINGERPRINT_LENGTH = 128
HASH_LENGTH = 64  # hex SHA-256
# Ids the API carries as int64. SQLite's INTEGER is 64-bit already, and only INTEGER PRIMARY
# KEY autoincrements there, so BIGINT is for the other databases.
ID_TYPE = BigInteger().with_variant(Integer, "sqlite")


def utc(value: datetime) -> datetime:
    """`value` in UTC, as rows hold it; a naive datetime is a bug, never guessed at."""
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the broker stores aware UTC times")
    return value.astimezone(UTC)


def resource_columns(resources: InstanceResources) -> dict[str, Any]:
    """The columns GrantRow and InstanceRow both use to hold an instance's AWS resources."""
    return asdict(resources)


def resources_of(row: "GrantRow | InstanceRow") -> InstanceResources:
    return InstanceResources(
        role_name=row.role_name,
        role_arn=row.role_arn,
        profile_name=row.profile_name,
        profile_arn=row.profile_arn,
        association_id=row.association_id,
    )


class GrantRow(SQLModel, table=True):
    __tablename__ = "grants"
    # An instance's grants are read by where it lives and its id.
    __table_args__ = (Index("ix_grants_place_instance", "account", "region", "instance_id"),)

    # Insertion order, and the position a page of grants continues from.
    seq: int | None = Field(default=None, primary_key=True, sa_type=ID_TYPE)
    grant_id: str = Field(sa_type=String(GRANT_ID_LENGTH), unique=True, index=True)
    account: str = Field(sa_type=String(ACCOUNT_LENGTH))
    region: str = Field(sa_type=String(REGION_LENGTH))
    instance_id: str = Field(sa_type=String(INSTANCE_ID_LENGTH), index=True)
    bucket: str = Field(sa_type=String(BUCKET_LENGTH))
    prefix: str = Field(sa_type=String(PREFIX_LENGTH))
    access: str = Field(sa_type=String(ENUM_LENGTH))
    state: str = Field(sa_type=String(STATE_LENGTH), index=True)
    created_at: datetime
    updated_at: datetime
    state_since: datetime
    # The sweep looks for grants whose expiry has passed.
    expires_at: datetime | None = Field(index=True)
    requested_by: str = Field(sa_type=String(PRINCIPAL_LENGTH))
    reason: str = Field(sa_type=String(REASON_LENGTH))
    failure_reason: str = Field(sa_type=Text)
    role_name: str = Field(sa_type=String(IAM_NAME_LENGTH))
    role_arn: str = Field(sa_type=String(ARN_LENGTH))
    profile_name: str = Field(sa_type=String(IAM_NAME_LENGTH))
    profile_arn: str = Field(sa_type=String(ARN_LENGTH))
    association_id: str = Field(sa_type=String(ASSOCIATION_ID_LENGTH))
    # JSON (broker.adapters.db.approvals); NULL when the grant needed no approval.
    approval: str | None = Field(default=None, sa_type=Text)


class AuditEventRow(SQLModel, table=True):
    __tablename__ = "audit_events"

    event_id: int | None = Field(default=None, primary_key=True, sa_type=ID_TYPE)
    time: datetime
    actor: str = Field(sa_type=String(PRINCIPAL_LENGTH))
    action: str = Field(sa_type=String(ACTION_LENGTH))
    outcome: str = Field(sa_type=String(ENUM_LENGTH))
    instance_id: str = Field(sa_type=String(INSTANCE_ID_LENGTH), index=True)
    grant_id: str = Field(sa_type=String(GRANT_ID_LENGTH), index=True)
    # JSON text rather than a JSON column: the same on SQLite and PostgreSQL, and never queried.
    detail: str = Field(sa_type=Text)
    # The account (its key: "" for the broker's own) and region of the instance the event is
    # about, as its detail names them ("" for none): a copy, for reading one place's trail.
    account: str = Field(sa_type=String(ACCOUNT_LENGTH), default="")
    region: str = Field(sa_type=String(REGION_LENGTH), default="")
    # The hash chain (broker.domain.audit_chain): the previous event's hash, and this one's.
    prev_hash: str = Field(sa_type=String(HASH_LENGTH))
    hash: str = Field(sa_type=String(HASH_LENGTH))


class DeliveryRow(SQLModel, table=True):
    """How far a notification destination has been sent the audit trail."""

    __tablename__ = "notification_deliveries"

    destination: str = Field(sa_type=String(DESTINATION_LENGTH), primary_key=True)
    delivered_through: int = Field(sa_type=ID_TYPE)
    failures: int
    last_error: str = Field(sa_type=Text)
    last_attempt_at: datetime | None


class IdempotencyKeyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    operation: str = Field(sa_type=String(OPERATION_LENGTH), primary_key=True)
    key: str = Field(sa_type=String(IDEMPOTENCY_KEY_LENGTH), primary_key=True)
    fingerprint: str = Field(sa_type=String(FINGERPRINT_LENGTH))
    grant_id: str = Field(sa_type=String(GRANT_ID_LENGTH))
    created_at: datetime


class MissingInstanceRow(SQLModel, table=True):
    """An instance EC2 did not know, where it was granted, and since when."""

    __tablename__ = "missing_instances"

    account: str = Field(sa_type=String(ACCOUNT_LENGTH), primary_key=True)
    region: str = Field(sa_type=String(REGION_LENGTH), primary_key=True)
    instance_id: str = Field(sa_type=String(INSTANCE_ID_LENGTH), primary_key=True)
    since: datetime


class InstanceRow(SQLModel, table=True):
    __tablename__ = "instance_records"

    account: str = Field(sa_type=String(ACCOUNT_LENGTH), primary_key=True)
    region: str = Field(sa_type=String(REGION_LENGTH), primary_key=True)
    instance_id: str = Field(sa_type=String(INSTANCE_ID_LENGTH), primary_key=True)
    role_name: str = Field(sa_type=String(IAM_NAME_LENGTH))
    role_arn: str = Field(sa_type=String(ARN_LENGTH))
    profile_name: str = Field(sa_type=String(IAM_NAME_LENGTH))
    profile_arn: str = Field(sa_type=String(ARN_LENGTH))
    association_id: str = Field(sa_type=String(ASSOCIATION_ID_LENGTH))
    policy_document: str = Field(sa_type=Text)
    role_in_profile: bool
    updated_at: datetime
