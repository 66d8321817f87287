"""When each grant entered its state: /metrics reports how long the oldest pending and revoking
grants have waited, which a grant's creation or last update cannot tell.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SINCE_TYPE = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Nullable until the existing grants have it; batch mode for SQLite's ALTER. A grant's last
    # update is the best guess there is: no later change left its state.
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("state_since", SINCE_TYPE, nullable=True))
    op.execute("UPDATE grants SET state_since = updated_at")
    with op.batch_alter_table("grants") as batch:
        batch.alter_column("state_since", existing_type=SINCE_TYPE, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("state_since")
