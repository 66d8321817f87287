"""The initial schema: grants, audit events, idempotency keys and instance records.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# int64 ids; SQLite's INTEGER is 64-bit and the only type that autoincrements there.
ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    _create_grants()
    _create_audit_events()
    _create_idempotency_keys()
    _create_instances()


def downgrade() -> None:
    op.drop_table("instances")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_audit_events_instance_id", table_name="audit_events")
    op.drop_index("ix_audit_events_grant_id", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_grants_state", table_name="grants")
    op.drop_index("ix_grants_instance_id", table_name="grants")
    op.drop_index("ix_grants_grant_id", table_name="grants")
    op.drop_table("grants")


def _create_grants() -> None:
    op.create_table(
        "grants",
        sa.Column("seq", ID_TYPE, nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("bucket", sa.String(length=63), nullable=False),
        sa.Column("prefix", sa.String(length=1024), nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_by", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.String(length=1024), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.Column("role_name", sa.String(length=128), nullable=False),
        sa.Column("role_arn", sa.String(length=2048), nullable=False),
        sa.Column("profile_name", sa.String(length=128), nullable=False),
        sa.Column("profile_arn", sa.String(length=2048), nullable=False),
        sa.Column("association_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_grants_grant_id", "grants", ["grant_id"], unique=True)
    op.create_index("ix_grants_instance_id", "grants", ["instance_id"], unique=False)
    op.create_index("ix_grants_state", "grants", ["state"], unique=False)


def _create_audit_events() -> None:
    op.create_table(
        "audit_events",
        sa.Column("event_id", ID_TYPE, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_audit_events_grant_id", "audit_events", ["grant_id"], unique=False)
    op.create_index("ix_audit_events_instance_id", "audit_events", ["instance_id"], unique=False)


def _create_idempotency_keys() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("operation", "key"),
    )


def _create_instances() -> None:
    op.create_table(
        "instances",
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("role_name", sa.String(length=128), nullable=False),
        sa.Column("role_arn", sa.String(length=2048), nullable=False),
        sa.Column("profile_name", sa.String(length=128), nullable=False),
        sa.Column("profile_arn", sa.String(length=2048), nullable=False),
        sa.Column("association_id", sa.String(length=64), nullable=False),
        sa.Column("policy_document", sa.Text(), nullable=False),
        sa.Column("role_in_profile", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance_id"),
    )
