"""One database transaction over all stores, as the service layer's UnitOfWork."""

from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from broker.adapters.db.audit_log import SqlAuditLog
from broker.adapters.db.engine import READ_ONLY
from broker.adapters.db.grant_store import SqlGrantStore
from broker.adapters.db.idempotency_keys import SqlIdempotencyKeys
from broker.adapters.db.instance_records import SqlInstanceRecords
from broker.service.ports import (
    AuditLog,
    GrantStore,
    IdempotencyKeys,
    InstanceRecords,
    UnitOfWork,
    UnitOfWorkFactory,
)


class SqlUnitOfWork:
    """A Session opened on enter; leaving without commit() rolls back whatever it holds.

    Losing the database surfaces from any store call or commit() as StoreUnavailable, raised
    by the engine itself (broker.adapters.db.engine), so nothing here catches SQL errors.
    """

    grants: GrantStore
    audit: AuditLog
    idempotency: IdempotencyKeys
    instances: InstanceRecords

    def __init__(self, session_factory: Callable[[], Session], *, read_only: bool) -> None:
        self._session_factory, self._read_only = session_factory, read_only

    def __enter__(self) -> "SqlUnitOfWork":
        self._session = self._session_factory()
        self.grants = SqlGrantStore(self._session)
        self.audit = SqlAuditLog(self._session)
        self.idempotency = SqlIdempotencyKeys(self._session)
        self.instances = SqlInstanceRecords(self._session)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._session.rollback()
        finally:
            # The connection goes back to the pool even when the rollback could not reach
            # the database; the pool discards it if it is broken.
            self._session.close()

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        self._session.commit()


def sql_unit_of_work_factory(engine: Engine) -> UnitOfWorkFactory:
    # Objects stay readable after commit: services return what they just wrote.
    writing = sessionmaker(engine, class_=Session, expire_on_commit=False)
    reading = sessionmaker(engine.execution_options(**{READ_ONLY: True}), class_=Session)

    def new_unit_of_work(*, read_only: bool = False) -> UnitOfWork:
        return SqlUnitOfWork(reading if read_only else writing, read_only=read_only)

    return new_unit_of_work
