"""Grants on the database: rows of `grants`, returned as domain Grants."""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, func, select

from broker.adapters.db.approvals import approval_of, approval_text
from broker.adapters.db.pagination import fetch_size, page_of
from broker.adapters.db.tables import GrantRow, resource_columns, resources_of, utc
from broker.domain.access import Access, GrantState
from broker.domain.errors import GrantNotFound
from broker.domain.grants import Grant, GrantScope
from broker.domain.places import InstanceRef, Place
from broker.service.ports import GrantFilter, Page, StateCount

_LIVE_STATES = [state.value for state in GrantState if state.is_desired or state.is_settling]
_DESIRED_STATES = [state.value for state in GrantState if state.is_desired]
_SETTLING_STATES = [state.value for state in GrantState if state.is_settling]


class SqlGrantStore:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, grant: Grant) -> None:
        self._session.add(GrantRow(**_columns_of(grant)))

    def save(self, grant: Grant) -> None:
        """Overwrites the stored grant of the same id; raises GrantNotFound if there is none."""
        row = self._row(grant.grant_id)
        if row is None:
            raise GrantNotFound(grant.grant_id)
        row.sqlmodel_update(_columns_of(grant))
        self._session.add(row)

    def get(self, grant_id: str) -> Grant | None:
        row = self._row(grant_id)
        return _grant_of(row) if row is not None else None

    def for_instance(self, instance: InstanceRef) -> list[Grant]:
        query = (
            select(GrantRow)
            .where(*_at(instance.place), GrantRow.instance_id == instance.instance_id)
            .where(col(GrantRow.state).in_(_LIVE_STATES))
            .order_by(col(GrantRow.seq))
        )
        return [_grant_of(row) for row in self._session.exec(query)]

    def expired(self, now: datetime) -> list[Grant]:
        query = (
            select(GrantRow)
            .where(
                col(GrantRow.state).in_(_DESIRED_STATES),
                col(GrantRow.expires_at).is_not(None),
                col(GrantRow.expires_at) <= utc(now),
            )
            .order_by(col(GrantRow.seq))
        )
        return [_grant_of(row) for row in self._session.exec(query)]

    def lapsed_requests(self, now: datetime) -> list[Grant]:
        query = (
            select(GrantRow)
            .where(
                GrantRow.state == GrantState.AWAITING_APPROVAL.value,
                col(GrantRow.expires_at) <= utc(now),
            )
            .order_by(col(GrantRow.seq))
        )
        return [_grant_of(row) for row in self._session.exec(query)]

    def settling_instances(self) -> list[InstanceRef]:
        return self._instances_in(_SETTLING_STATES)

    def live_instances(self) -> list[InstanceRef]:
        return self._instances_in(_LIVE_STATES)

    def _instances_in(self, states: list[str]) -> list[InstanceRef]:
        columns = (GrantRow.account, GrantRow.region, GrantRow.instance_id)
        query = select(*columns).where(col(GrantRow.state).in_(states)).distinct()
        found = self._session.exec(query.order_by(*columns))
        return [InstanceRef(Place(account, region), i) for account, region, i in found]

    def list(self, where: GrantFilter, after: int | None, limit: int) -> Page[Grant]:
        query = select(GrantRow).order_by(col(GrantRow.seq)).limit(fetch_size(limit))
        if after is not None:
            query = query.where(col(GrantRow.seq) > after)
        if where.places.account is not None:
            query = query.where(GrantRow.account == where.places.account)
        if where.places.region is not None:
            query = query.where(GrantRow.region == where.places.region)
        if where.instance_id:
            query = query.where(GrantRow.instance_id == where.instance_id)
        if where.bucket:
            query = query.where(GrantRow.bucket == where.bucket)
        if where.state is not None:
            query = query.where(GrantRow.state == where.state.value)
        if where.requested_by:
            query = query.where(GrantRow.requested_by == where.requested_by)
        rows = self._session.exec(query).all()
        return page_of(rows, limit, _seq_of, _grant_of)

    def count_by_state(self) -> dict[GrantState, StateCount]:
        oldest = func.min(GrantRow.state_since)
        query = select(GrantRow.state, func.count(), oldest).group_by(GrantRow.state)
        return {
            GrantState(state): StateCount(count, since)
            for state, count, since in self._session.exec(query)
        }

    def _row(self, grant_id: str) -> GrantRow | None:
        return self._session.exec(select(GrantRow).where(GrantRow.grant_id == grant_id)).first()


def _at(place: Place) -> tuple[ColumnElement[bool], ...]:
    return (col(GrantRow.account) == place.account, col(GrantRow.region) == place.region)


def _seq_of(row: GrantRow) -> int:
    assert row.seq is not None, "rows read from the database have a seq"
    return row.seq


def _columns_of(grant: Grant) -> dict[str, Any]:
    return {
        "grant_id": grant.grant_id,
        "account": grant.place.account,
        "region": grant.place.region,
        "instance_id": grant.instance_id,
        "bucket": grant.scope.bucket,
        "prefix": grant.scope.prefix,
        "access": grant.scope.access.value,
        "state": grant.state.value,
        "created_at": utc(grant.created_at),
        "updated_at": utc(grant.updated_at),
        "state_since": utc(grant.state_since),
        "expires_at": utc(grant.expires_at) if grant.expires_at is not None else None,
        "requested_by": grant.requested_by,
        "reason": grant.reason,
        "failure_reason": grant.failure_reason,
        **resource_columns(grant.resources),
        "approval": approval_text(grant.approval),
    }


def _grant_of(row: GrantRow) -> Grant:
    return Grant(
        grant_id=row.grant_id,
        instance_id=row.instance_id,
        place=Place(row.account, row.region),
        scope=GrantScope(bucket=row.bucket, prefix=row.prefix, access=Access(row.access)),
        state=GrantState(row.state),
        created_at=row.created_at,
        updated_at=row.updated_at,
        state_since=row.state_since,
        expires_at=row.expires_at,
        requested_by=row.requested_by,
        reason=row.reason,
        failure_reason=row.failure_reason,
        resources=resources_of(row),
        approval=approval_of(row.approval),
    )
