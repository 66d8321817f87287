"""What store tests write, and writing it: grants, audit events, idempotency and instance records.

Shared by the contract suite (tests/contract), the SQL adapter's own tests (tests/integration/db)
and the tests of `audit verify`, which all fill a unit of work the same way.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from broker.domain.access import Access, GrantState
from broker.domain.audit import NewAuditEvent, Outcome
from broker.domain.grants import Grant, GrantScope, InstanceResources
from broker.domain.places import InstanceRef
from broker.service.ports import IdempotencyRecord, InstanceRecord, UnitOfWorkFactory
from tests.places import HOME

# Not UTC, so tests show a store hands back UTC whatever offset it was given.
MOMENT = datetime(2026, 7, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
INSTANCE_A = "i-0123456789abcdef0"
INSTANCE_B = "i-0fedcba9876543210"
GRANT_1 = "00000000-0000-4000-8000-000000000001"
GRANT_2 = "00000000-0000-4000-8000-000000000002"

GrantMaker = Callable[..., Grant]


def grant_maker() -> GrantMaker:
    """Builds pending grants with every field set and ids of their own; keywords override fields."""
    counter = iter(range(1, 1_000_000))

    def build(**overrides: Any) -> Grant:
        number = next(counter)
        grant = Grant(
            grant_id=f"00000000-0000-4000-8000-{number:012d}",
            instance_id=INSTANCE_A,
            place=HOME,
            scope=GrantScope(bucket="reports", prefix=f"daily/{number}/", access=Access.UPLOAD),
            state=GrantState.PENDING,
            created_at=MOMENT,
            updated_at=MOMENT,
            state_since=MOMENT,
            expires_at=MOMENT + timedelta(hours=1),
            requested_by="alice@example.com",
            reason="nightly export",
        )
        return replace(grant, **overrides)

    return build


def add_all(units: UnitOfWorkFactory, grants: list[Grant]) -> None:
    with units() as uow:
        for grant in grants:
            uow.grants.add(grant)
        uow.commit()


def audit_event(
    number: int,
    instance_id: str = INSTANCE_A,
    grant_id: str = GRANT_1,
    detail: dict[str, Any] | None = None,
) -> NewAuditEvent:
    return NewAuditEvent(
        time=MOMENT + timedelta(seconds=number),
        actor="alice@example.com",
        action=f"step-{number}",
        outcome=Outcome.SUCCESS,
        instance_id=instance_id,
        grant_id=grant_id,
        detail=detail or {},
    )


def append_all(units: UnitOfWorkFactory, events: list[NewAuditEvent]) -> None:
    with units() as uow:
        for event in events:
            uow.audit.append(event)
        uow.commit()


def idempotency_record(operation: str = "GrantAccess", key: str = "req-1") -> IdempotencyRecord:
    return IdempotencyRecord(
        key=key, operation=operation, fingerprint="f" * 64, grant_id=GRANT_1, created_at=MOMENT
    )


def instance_record(policy_document: str, association_id: str) -> InstanceRecord:
    return InstanceRecord(
        instance=InstanceRef(HOME, INSTANCE_A),
        resources=InstanceResources(
            role_name="accessbroker-i-0123456789abcdef0",
            role_arn="arn:aws:iam::123456789012:role/accessbroker/accessbroker-i-0123456789abcdef0",
            profile_name="accessbroker-i-0123456789abcdef0",
            profile_arn="arn:aws:iam::123456789012:instance-profile/accessbroker/x",
            association_id=association_id,
        ),
        policy_document=policy_document,
        updated_at=MOMENT,
    )
