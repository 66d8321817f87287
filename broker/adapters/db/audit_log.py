"""The audit log on the database: hash-chained events in commit order, as AuditEvents."""

import json
from typing import Any, TypeVar

from sqlalchemy import func, text
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from broker.adapters.db.pagination import fetch_size, page_of
from broker.adapters.db.tables import AuditEventRow, utc
from broker.domain.audit import AuditEvent, NewAuditEvent, Outcome
from broker.domain.audit_chain import GENESIS_HASH, ChainLink, chain_link, place_named
from broker.domain.places import ANY_PLACE
from broker.service.ports import AuditFilter, Page

# An arbitrary constant naming the audit log's lock among the database's advisory locks.
AUDIT_LOCK_KEY = 0x61756469740001


class SqlAuditLog:
    def __init__(self, session: Session) -> None:
        self._session = session

    def append(self, event: NewAuditEvent) -> None:
        """Writes the event chained onto the newest one (see broker.domain.audit_chain)."""
        self._serialize_appends()
        newest = self._newest()
        stored = _as_stored(event, self._next_event_id(newest))
        link = chain_link(newest.hash if newest else GENESIS_HASH, stored)
        self._session.add(_row_of(link))
        # Written now, so a failure surfaces at append() rather than at commit.
        self._session.flush()

    def last_event_id(self) -> int:
        newest = self._session.exec(select(func.max(AuditEventRow.event_id))).one()
        return int(newest or 0)

    def list(self, where: AuditFilter, after: int | None, limit: int) -> Page[AuditEvent]:
        rows = self._session.exec(_matching(_events_in_order(after, limit), where)).all()
        return page_of(rows, limit, _event_id_of, _event_of)

    def count(self, where: AuditFilter, after: int) -> int:
        query = select(func.count()).select_from(AuditEventRow)
        query = _matching(query.where(col(AuditEventRow.event_id) > after), where)
        return int(self._session.exec(query).one())

    def chain(self, after: int | None, limit: int) -> Page[ChainLink]:
        """Events with their stored hashes, in id order, for verifying the chain."""
        rows = self._session.exec(_events_in_order(after, limit)).all()
        return page_of(rows, limit, _event_id_of, _link_of)

    def _serialize_appends(self) -> None:
        """Holds the audit log's append lock until this transaction ends.

        Event ids then follow commit order, so a reader resuming after event N can never miss
        an event N-1 that was still uncommitted when it read N; and the newest event read
        under the lock stays the newest until this transaction's event follows it in the
        chain. On SQLite the write lock that BEGIN IMMEDIATE takes does this; PostgreSQL
        needs a transaction-scoped advisory lock (and READ COMMITTED, its default, so the
        reads after the lock see what the previous holder committed).
        """
        if self._is_postgresql():
            self._session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY}
            )

    def _newest(self) -> ChainLink | None:
        row = self._session.exec(
            select(AuditEventRow).order_by(col(AuditEventRow.event_id).desc()).limit(1)
        ).first()
        return _link_of(row) if row is not None else None

    def _next_event_id(self, newest: ChainLink | None) -> int:
        """The id the new event will have; the hash covers it, so it is taken before writing.

        PostgreSQL's id sequence (which skips the ids of rolled back appends); on SQLite what
        it would assign itself, the newest id plus one, under the write lock.
        """
        if self._is_postgresql():
            next_id = self._session.execute(
                text("SELECT nextval(pg_get_serial_sequence('audit_events', 'event_id'))")
            ).scalar_one()
            return int(next_id)
        return newest.event.event_id + 1 if newest else 1

    def _is_postgresql(self) -> bool:
        return self._session.get_bind().dialect.name == "postgresql"


Q = TypeVar("Q", bound=SelectOfScalar[Any])


def _matching(query: Q, where: AuditFilter) -> Q:
    if where.instance_id:
        query = query.where(AuditEventRow.instance_id == where.instance_id)
    if where.grant_id:
        query = query.where(AuditEventRow.grant_id == where.grant_id)
    if where.actions:
        query = query.where(col(AuditEventRow.action).in_(sorted(where.actions)))
    if where.places != ANY_PLACE:  # events about no instance are in no place
        query = query.where(AuditEventRow.region != "")
    if where.places.account is not None:
        query = query.where(AuditEventRow.account == where.places.account)
    if where.places.region is not None:
        query = query.where(AuditEventRow.region == where.places.region)
    return query


def _events_in_order(after: int | None, limit: int) -> SelectOfScalar[AuditEventRow]:
    """A page of events after `after`, in id order, one more than `limit` (see page_of)."""
    query = select(AuditEventRow).order_by(col(AuditEventRow.event_id)).limit(fetch_size(limit))
    return query if after is None else query.where(col(AuditEventRow.event_id) > after)


def _event_id_of(row: AuditEventRow) -> int:
    assert row.event_id is not None, "rows read from the database have an event_id"
    return row.event_id


def _as_stored(event: NewAuditEvent, event_id: int) -> AuditEvent:
    """The event as it will read back, which is what its hash must cover."""
    return AuditEvent(
        event_id=event_id,
        time=utc(event.time),
        actor=event.actor,
        action=event.action,
        outcome=event.outcome,
        instance_id=event.instance_id,
        grant_id=event.grant_id,
        detail=json.loads(_detail_text(event.detail)),
    )


def _detail_text(detail: dict[str, Any]) -> str:
    # Sorted keys: equal details are equal text, whatever order they were built in.
    return json.dumps(detail, sort_keys=True)


def _row_of(link: ChainLink) -> AuditEventRow:
    event = link.event
    # Where the instance lives, as the (hashed) detail says: for reading one place's trail.
    account, region = place_named(event.detail)
    return AuditEventRow(
        event_id=event.event_id,
        time=event.time,
        actor=event.actor,
        action=event.action,
        outcome=event.outcome.value,
        instance_id=event.instance_id,
        grant_id=event.grant_id,
        detail=_detail_text(event.detail),
        account=account,
        region=region,
        prev_hash=link.prev_hash,
        hash=link.hash,
    )


def _link_of(row: AuditEventRow) -> ChainLink:
    place = (row.account, row.region)
    return ChainLink(event=_event_of(row), prev_hash=row.prev_hash, hash=row.hash, place=place)


def _event_of(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        event_id=_event_id_of(row),
        time=row.time,
        actor=row.actor,
        action=row.action,
        outcome=Outcome(row.outcome),
        instance_id=row.instance_id,
        grant_id=row.grant_id,
        detail=json.loads(row.detail),
    )
