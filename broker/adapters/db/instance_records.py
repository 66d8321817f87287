"""Instance records on the database: what AWS holds for each instance, as last recorded."""

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from broker.adapters.db.tables import (
    InstanceRow,
    MissingInstanceRow,
    resource_columns,
    resources_of,
    utc,
)
from broker.domain.places import InstanceRef, Place
from broker.service.ports import InstanceRecord


class SqlInstanceRecords:
    """Per-instance rows; convergence is serialized per instance, so upserts do not race."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, instance: InstanceRef) -> InstanceRecord | None:
        row = self._session.get(InstanceRow, _key(instance))
        return _instance_record_of(row) if row is not None else None

    def save(self, record: InstanceRecord) -> None:
        """Inserts the instance's record or overwrites the stored one."""
        columns = _columns_of(record)
        row = self._session.get(InstanceRow, _key(record.instance))
        if row is None:
            account, region, instance_id = _key(record.instance)
            row = InstanceRow(account=account, region=region, instance_id=instance_id, **columns)
        else:
            row.sqlmodel_update(columns)
        self._session.add(row)

    def missing_since(self, instance: InstanceRef) -> datetime | None:
        row = self._session.get(MissingInstanceRow, _key(instance))
        return row.since if row is not None else None

    def note_missing(self, instance: InstanceRef, since: datetime) -> None:
        if self._session.get(MissingInstanceRow, _key(instance)) is None:
            account, region, instance_id = _key(instance)
            missing = MissingInstanceRow(
                account=account, region=region, instance_id=instance_id, since=utc(since)
            )
            self._session.add(missing)

    def noted_missing(self) -> set[InstanceRef]:
        rows = self._session.exec(select(MissingInstanceRow))
        return {InstanceRef(Place(r.account, r.region), r.instance_id) for r in rows}

    def note_found(self, instance: InstanceRef) -> None:
        row = self._session.get(MissingInstanceRow, _key(instance))
        if row is not None:
            self._session.delete(row)


def _key(instance: InstanceRef) -> tuple[str, str, str]:
    return (instance.place.account, instance.place.region, instance.instance_id)


def _columns_of(record: InstanceRecord) -> dict[str, Any]:
    return {
        **resource_columns(record.resources),
        "policy_document": record.policy_document,
        "role_in_profile": record.role_in_profile,
        "updated_at": utc(record.updated_at),
    }


def _instance_record_of(row: InstanceRow) -> InstanceRecord:
    return InstanceRecord(
        instance=InstanceRef(Place(row.account, row.region), row.instance_id),
        resources=resources_of(row),
        policy_document=row.policy_document,
        role_in_profile=row.role_in_profile,
        updated_at=row.updated_at,
    )
