"""Idempotency keys on the database: what each caller's key was first used for."""

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from broker.adapters.db.tables import IdempotencyKeyRow, utc
from broker.domain.errors import IdempotencyConflict
from broker.service.ports import IdempotencyRecord


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
