"""One database transaction over all stores, as the service layer's UnitOfWork."""

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from opentelemetry.trace import INVALID_SPAN, NoOpTracer, Span, SpanKind, Tracer, get_current_span
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from broker.adapters.db.audit_log import SqlAuditLog
from broker.adapters.db.deliveries import SqlDeliveries
from broker.adapters.db.engine import READ_ONLY
from broker.adapters.db.grant_store import SqlGrantStore
from broker.adapters.db.idempotency_keys import SqlIdempotencyKeys
from broker.adapters.db.instance_records import SqlInstanceRecords
from broker.service.ports import (
    AuditLog,
    Deliveries,
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

    Within a trace (an RPC's, a convergence's), the transaction is a span of its own; outside
    one (a scrape of /metrics counting grants, say) it is not traced: a trace of its own would
    only be noise.
    """

    grants: GrantStore
    audit: AuditLog
    idempotency: IdempotencyKeys
    instances: InstanceRecords
    deliveries: Deliveries

    def __init__(
        self, session_factory: Callable[[], Session], *, read_only: bool, tracing: "Transactions"
    ) -> None:
        self._session_factory, self._read_only, self._tracing = session_factory, read_only, tracing

    def __enter__(self) -> "SqlUnitOfWork":
        self._span = ExitStack()
        self._traced: Span = INVALID_SPAN
        if get_current_span().is_recording():
            self._traced = self._span.enter_context(self._tracing.span(read_only=self._read_only))
        self._session = self._session_factory()
        self.grants = SqlGrantStore(self._session)
        self.audit = SqlAuditLog(self._session)
        self.idempotency = SqlIdempotencyKeys(self._session)
        self.instances = SqlInstanceRecords(self._session)
        self.deliveries = SqlDeliveries(self._session)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._session.rollback()
        finally:
            # The connection goes back to the pool even when the rollback could not reach
            # the database; the pool discards it if it is broken.
            self._session.close()
            self._span.__exit__(*exc_info)

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        self._session.commit()
        self._traced.set_attribute("db.committed", True)


class Transactions:
    """Makes the span of a transaction on one engine's database."""

    def __init__(self, engine: Engine, tracer: Tracer) -> None:
        self._tracer, self._system = tracer, engine.dialect.name

    def span(self, *, read_only: bool) -> AbstractContextManager[Span]:
        attributes: dict[str, str | bool] = {"db.system": self._system, "db.read_only": read_only}
        return self._tracer.start_as_current_span(
            "db.transaction", kind=SpanKind.CLIENT, attributes=attributes
        )


def sql_unit_of_work_factory(engine: Engine, tracer: Tracer | None = None) -> UnitOfWorkFactory:
    # Objects stay readable after commit: services return what they just wrote.
    writing = sessionmaker(engine, class_=Session, expire_on_commit=False)
    reading = sessionmaker(engine.execution_options(**{READ_ONLY: True}), class_=Session)
    tracing = Transactions(engine, tracer or NoOpTracer())

    def new_unit_of_work(*, read_only: bool = False) -> UnitOfWork:
        session = reading if read_only else writing
        return SqlUnitOfWork(session, read_only=read_only, tracing=tracing)

    return new_unit_of_work
