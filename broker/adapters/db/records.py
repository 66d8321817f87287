"""The audit log, idempotency keys and instance records on the database."""

import json
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broker.adapters.db.pagination import fetch_size, page_of
from broker.adapters.db.tables import (
    AuditEventRow,
    IdempotencyKeyRow,
    InstanceRow,
    resource_columns,
    resources_of,
    utc,
)
from broker.domain.audit import AuditEvent, NewAuditEvent, Outcome
from broker.domain.errors import IdempotencyConflict
from broker.service.ports import AuditFilter, IdempotencyRecord, InstanceRecord, Page

# An arbitrary constant naming the audit log's lock among the database's advisory locks.
AUDIT_LOCK_KEY = 0x61756469740001


class SqlAuditLog:
    def __init__(self, session: Session) -> None:
        self._session = session

    def append(self, event: NewAuditEvent) -> None:
        self._serialize_appends()
        self._session.add(
            AuditEventRow(
                time=utc(event.time),
                actor=event.actor,
                action=event.action,
                outcome=event.outcome.value,
                instance_id=event.instance_id,
                grant_id=event.grant_id,
                # Sorted keys: equal details are equal text, whatever order they were built in.
                detail=json.dumps(event.detail, sort_keys=True),
            )
        )
        # Writing now takes the id, and on SQLite the write lock, within this transaction.
        self._session.flush()

    def last_event_id(self) -> int:
        newest = self._session.exec(select(func.max(AuditEventRow.event_id))).one()
        return int(newest or 0)

    def _serialize_appends(self) -> None:
        """Holds the audit log's append lock until this transaction ends.

        Event ids then follow commit order, so a reader resuming after event N can never miss
        an event N-1 that was still uncommitted when it read N. On SQLite the write lock that
        BEGIN IMMEDIATE takes does this; PostgreSQL needs a transaction-scoped advisory lock.
        """
        if self._session.get_bind().dialect.name == "postgresql":
            self._session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY}
            )

    def list(self, where: AuditFilter, after: int | None, limit: int) -> Page[AuditEvent]:
        query = select(AuditEventRow).order_by(col(AuditEventRow.event_id))
        query = query.limit(fetch_size(limit))
        if after is not None:
            query = query.where(col(AuditEventRow.event_id) > after)
        if where.instance_id:
            query = query.where(AuditEventRow.instance_id == where.instance_id)
        if where.grant_id:
            query = query.where(AuditEventRow.grant_id == where.grant_id)
        rows = self._session.exec(query).all()
        return page_of(rows, limit, _event_id_of, _event_of)


class SqlIdempotencyKeys:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, operation: str, key: str) -> IdempotencyRecord | None:
        row = self._session.get(IdempotencyKeyRow, (operation, key))
        if row is None:
            return None
        return IdempotencyRecord(
            key=row.key,
            operation=row.operation,
            fingerprint=row.fingerprint,
            grant_id=row.grant_id,
            created_at=row.created_at,
        )

    def add(self, record: IdempotencyRecord) -> None:
        """Records the key's first use.

        Raises IdempotencyConflict here, at add(), when (operation, key) is already stored:
        the row is flushed at once so a concurrent first use loses now, not at commit. The
        unit of work is unusable afterwards and must be left, which discards its writes.
        """
        self._session.add(
            IdempotencyKeyRow(
                operation=record.operation,
                key=record.key,
                fingerprint=record.fingerprint,
                grant_id=record.grant_id,
                created_at=utc(record.created_at),
            )
        )
        try:
            self._session.flush()
        except IntegrityError as error:
            raise IdempotencyConflict(record.key) from error


class SqlInstanceRecords:
    """Per-instance rows; convergence is serialized per instance, so upserts do not race."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, instance_id: str) -> InstanceRecord | None:
        row = self._session.get(InstanceRow, instance_id)
        return _instance_record_of(row) if row is not None else None

    def save(self, record: InstanceRecord) -> None:
        """Inserts the instance's record or overwrites the stored one."""
        columns = _columns_of(record)
        row = self._session.get(InstanceRow, record.instance_id)
        if row is None:
            row = InstanceRow(instance_id=record.instance_id, **columns)
        else:
            row.sqlmodel_update(columns)
        self._session.add(row)


def _event_id_of(row: AuditEventRow) -> int:
    assert row.event_id is not None, "rows read from the database have an event_id"
    return row.event_id


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


def _columns_of(record: InstanceRecord) -> dict[str, Any]:
    return {
        **resource_columns(record.resources),
        "policy_document": record.policy_document,
        "role_in_profile": record.role_in_profile,
        "updated_at": utc(record.updated_at),
    }


def _instance_record_of(row: InstanceRow) -> InstanceRecord:
    return InstanceRecord(
        instance_id=row.instance_id,
        resources=resources_of(row),
        policy_document=row.policy_document,
        role_in_profile=row.role_in_profile,
        updated_at=row.updated_at,
    )
