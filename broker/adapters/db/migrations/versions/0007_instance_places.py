"""Every instance lives somewhere: grants and instance records name the account and region.

Records written before there were many accounts belong to the broker's own account (account
"", broker.domain.places.HOME_ACCOUNT) in its home region, which the broker hands over as
`home_region` (see broker.adapters.db.migrate). The instance records' key becomes (account,
region, instance id), so their table is rebuilt as `instance_records`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_LENGTH = 12
REGION_LENGTH = 32
_RECORD_COLUMNS = (
    "instance_id, role_name, role_arn, profile_name, profile_arn, association_id, "
    "policy_document, role_in_profile, updated_at"
)


def upgrade() -> None:
    region = _home_region()
    op.add_column("grants", _account_column())
    op.add_column("grants", _region_column())
    op.execute(sa.text("UPDATE grants SET region = :region").bindparams(region=region))
    op.create_index("ix_grants_place_instance", "grants", ["account", "region", "instance_id"])
    _create_instance_records()
    op.execute(
        sa.text(
            f"INSERT INTO instance_records (account, region, {_RECORD_COLUMNS}) "
            f"SELECT '', :region, {_RECORD_COLUMNS} FROM instances"
        ).bindparams(region=region)
    )
    op.drop_table("instances")


def downgrade() -> None:
    """Back to one account and region: what the broker recorded elsewhere is dropped (it could
    not be told apart from the home region's instances any more)."""
    region = _home_region()
    _create_instances()
    op.execute(
        sa.text(
            f"INSERT INTO instances ({_RECORD_COLUMNS}) SELECT {_RECORD_COLUMNS} "
            "FROM instance_records WHERE account = '' AND region = :region"
        ).bindparams(region=region)
    )
    op.drop_table("instance_records")
    elsewhere = "account <> '' OR region <> :region"
    # Their idempotency keys go with them: a retry would otherwise find a key without a grant.
    op.execute(
        sa.text(
            "DELETE FROM idempotency_keys WHERE grant_id IN "
            f"(SELECT grant_id FROM grants WHERE {elsewhere})"
        ).bindparams(region=region)
    )
    op.execute(sa.text(f"DELETE FROM grants WHERE {elsewhere}").bindparams(region=region))
    op.drop_index("ix_grants_place_instance", "grants")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("region")
        batch.drop_column("account")


def _home_region() -> str:
    """The region the records written so far belong to; required once there are any."""
    region = context.config.attributes.get("home_region", "")
    bind = op.get_bind()
    has_records = any(
        bind.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None
        for table in ("grants", "instances" if _has_table("instances") else "instance_records")
    )
    if has_records and not region:
        raise RuntimeError(
            "migration 0007 needs the broker's home region to move its records to "
            "(set AWS_DEFAULT_REGION, or the accounts file's home regions)"
        )
    return str(region)


def _has_table(name: str) -> bool:
    return sa.inspect(op.get_bind()).has_table(name)


def _account_column() -> sa.Column[str]:
    return sa.Column("account", sa.String(ACCOUNT_LENGTH), nullable=False, server_default="")


def _region_column() -> sa.Column[str]:
    return sa.Column("region", sa.String(REGION_LENGTH), nullable=False, server_default="")


def _create_instance_records() -> None:
    op.create_table(
        "instance_records",
        _account_column(),
        _region_column(),
        sa.Column("instance_id", sa.String(32), nullable=False),
        *_resource_columns(),
        sa.PrimaryKeyConstraint("account", "region", "instance_id"),
    )


def _create_instances() -> None:
    op.create_table(
        "instances",
        sa.Column("instance_id", sa.String(32), primary_key=True),
        *_resource_columns(),
    )


def _resource_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("role_name", sa.String(128), nullable=False),
        sa.Column("role_arn", sa.String(2048), nullable=False),
        sa.Column("profile_name", sa.String(128), nullable=False),
        sa.Column("profile_arn", sa.String(2048), nullable=False),
        sa.Column("association_id", sa.String(64), nullable=False),
        sa.Column("policy_document", sa.Text(), nullable=False),
        sa.Column("role_in_profile", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]
