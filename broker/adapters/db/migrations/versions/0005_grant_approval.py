"""A grant's approval: who may approve it, how many must, and who has (JSON, NULL for a grant
that needed none). Grants written before it needed none. The state column widens for the
state "awaiting_approval".

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("approval", sa.Text(), nullable=True))
        batch.alter_column("state", existing_type=sa.String(16), type_=sa.String(32))


def downgrade() -> None:
    # The states the older schema does not know end as ones it does: a request still waiting
    # lapses, a denied one failed.
    op.execute("UPDATE grants SET state = 'expired' WHERE state = 'awaiting_approval'")
    op.execute("UPDATE grants SET state = 'failed' WHERE state = 'denied'")
    with op.batch_alter_table("grants") as batch:
        batch.alter_column("state", existing_type=sa.String(32), type_=sa.String(16))
        batch.drop_column("approval")
