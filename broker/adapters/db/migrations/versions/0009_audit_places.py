"""Audit events name the account and region of the instance they are about in columns, so that
the trail can be read for one place (the same instance id in two accounts is two instances).

The detail, which the hash chain covers, already names them (`region`, and `account` unless
the broker's own): the columns are filled from it, and written from it from now on.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The detail is JSON text: each database reads a key of it its own way.
_FROM_DETAIL = {
    "sqlite": "COALESCE(json_extract(detail, '$.{key}'), '')",
    "postgresql": "COALESCE(CAST(detail AS json) ->> '{key}', '')",
}


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as table:
        table.add_column(sa.Column("account", sa.String(12), nullable=False, server_default=""))
        table.add_column(sa.Column("region", sa.String(32), nullable=False, server_default=""))
    read = _FROM_DETAIL[op.get_bind().dialect.name]
    op.execute(
        f"UPDATE audit_events SET account = {read.format(key='account')}, "
        f"region = {read.format(key='region')}"
    )


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as table:
        table.drop_column("region")
        table.drop_column("account")
