"""Acting on behalf of a person: a caller the access policy lists under `delegates` (the web
app) may name the person it acts for; the command is then authorized as that person, and every
audit event written while it is handled names the delegate too (`via` in its detail).

The delegate is held in a context variable for the length of the command, and the units of
work the service layer is given add it to each event they append: so every event of the
command carries it, whichever handler, step or convergence writes it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace

from broker.domain.audit import AuditEvent, NewAuditEvent
from broker.service.ports import (
    AuditFilter,
    AuditLog,
    Deliveries,
    GrantStore,
    IdempotencyKeys,
    InstanceRecords,
    Page,
    UnitOfWork,
    UnitOfWorkFactory,
)

_VIA: ContextVar[str] = ContextVar("accessbroker_via", default="")


@contextmanager
def acting_via(delegate: str) -> Iterator[None]:
    """Within the block, audit events name `delegate` ("" for a caller acting for itself)."""
    token = _VIA.set(delegate)
    try:
        yield
    finally:
        _VIA.reset(token)


def noting_delegates(units: UnitOfWorkFactory) -> UnitOfWorkFactory:
    """`units`, whose audit logs add the delegate acting now to every event appended."""

    def unit_of_work(*, read_only: bool = False) -> UnitOfWork:
        return _NotingUnitOfWork(units(read_only=read_only))

    return unit_of_work


class _NotingAuditLog:
    def __init__(self, log: AuditLog) -> None:
        self._log = log

    def append(self, event: NewAuditEvent) -> None:
        via = _VIA.get()
        self._log.append(replace(event, detail={**event.detail, "via": via}) if via else event)

    def last_event_id(self) -> int:
        return self._log.last_event_id()

    def list(self, where: AuditFilter, after: int | None, limit: int) -> Page[AuditEvent]:
        return self._log.list(where, after, limit)

    def count(self, where: AuditFilter, after: int) -> int:
        return self._log.count(where, after)


class _NotingUnitOfWork:
    grants: GrantStore
    audit: AuditLog
    idempotency: IdempotencyKeys
    instances: InstanceRecords
    deliveries: Deliveries

    def __init__(self, unit: UnitOfWork) -> None:
        self._unit = unit

    def __enter__(self) -> UnitOfWork:
        entered = self._unit.__enter__()
        self.grants, self.idempotency = entered.grants, entered.idempotency
        self.instances, self.deliveries = entered.instances, entered.deliveries
        self.audit = _NotingAuditLog(entered.audit)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._unit.__exit__(*exc_info)

    def commit(self) -> None:
        self._unit.commit()
