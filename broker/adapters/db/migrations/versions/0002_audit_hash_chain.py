"""Chain the audit trail: each event stores the previous event's hash and its own.

Events written before this migration are chained here, in id order from the genesis hash, so
`access-broker audit verify` walks one chain from the first event ever written. The chain
vouches for those older events only from this moment: an edit made to them before the upgrade
is sealed in with them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from broker.domain.audit import AuditEvent, Outcome
from broker.domain.audit_chain import GENESIS_HASH, chain_link

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HASH_TYPE = sa.String(length=64)
PAGE_SIZE = 1000
# The audit table as 0001 made it, without the model classes, which move on with later releases.
AUDIT_EVENTS = sa.table(
    "audit_events",
    sa.column("event_id", sa.BigInteger()),
    sa.column("time", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("instance_id", sa.String()),
    sa.column("grant_id", sa.String()),
    sa.column("detail", sa.Text()),
    sa.column("prev_hash", HASH_TYPE),
    sa.column("hash", HASH_TYPE),
)


def upgrade() -> None:
    # Nullable until the existing events have their hashes; batch mode for SQLite's ALTER.
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("prev_hash", HASH_TYPE, nullable=True))
        batch.add_column(sa.Column("hash", HASH_TYPE, nullable=True))
    _chain_existing_events(op.get_bind())
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("prev_hash", existing_type=HASH_TYPE, nullable=False)
        batch.alter_column("hash", existing_type=HASH_TYPE, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")


def _chain_existing_events(connection: sa.Connection) -> None:
    prev_hash = GENESIS_HASH
    update = (
        sa.update(AUDIT_EVENTS)
        .where(AUDIT_EVENTS.c.event_id == sa.bindparam("id"))
        .values(prev_hash=sa.bindparam("prev"), hash=sa.bindparam("own"))
    )
    for page in _pages(connection):
        hashes = []
        for row in page:
            link = chain_link(prev_hash, _event_of(row))
            hashes.append({"id": row.event_id, "prev": link.prev_hash, "own": link.hash})
            prev_hash = link.hash
        connection.execute(update, hashes)


def _pages(connection: sa.Connection) -> Iterator[Sequence[sa.Row[Any]]]:
    """Every event in id order, a page at a time: trails can be long."""
    columns = [c for c in AUDIT_EVENTS.c if c.name not in ("prev_hash", "hash")]
    after = 0
    while True:
        query = sa.select(*columns).order_by(AUDIT_EVENTS.c.event_id).limit(PAGE_SIZE)
        page = connection.execute(query.where(AUDIT_EVENTS.c.event_id > after)).all()
        if not page:
            return
        yield page
        after = page[-1].event_id


def _event_of(row: sa.Row[Any]) -> AuditEvent:
    """The event as the broker reads it back (broker.adapters.db.audit_log), so hashes agree."""
    return AuditEvent(
        event_id=row.event_id,
        time=_aware(row.time),
        actor=row.actor,
        action=row.action,
        outcome=Outcome(row.outcome),
        instance_id=row.instance_id,
        grant_id=row.grant_id,
        detail=json.loads(row.detail),
    )


def _aware(moment: datetime) -> datetime:
    # SQLite keeps no offset; the broker has always stored UTC there.
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment
