"""Notification delivery states on the database, one row per destination."""

from typing import Any

from sqlmodel import Session

from broker.adapters.db.tables import DeliveryRow, utc
from broker.service.ports import DeliveryState


class SqlDeliveries:
    """Each destination is delivered to under its own lock, so upserts do not race."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, destination: str) -> DeliveryState | None:
        row = self._session.get(DeliveryRow, destination)
        if row is None:
            return None
        return DeliveryState(
            destination=row.destination,
            delivered_through=row.delivered_through,
            failures=row.failures,
            last_error=row.last_error,
            last_attempt_at=row.last_attempt_at,
        )

    def save(self, state: DeliveryState) -> None:
        """Inserts the destination's state or overwrites the stored one."""
        columns: dict[str, Any] = {
            "delivered_through": state.delivered_through,
            "failures": state.failures,
            "last_error": state.last_error,
            "last_attempt_at": utc(state.last_attempt_at) if state.last_attempt_at else None,
        }
        row = self._session.get(DeliveryRow, state.destination)
        if row is None:
            row = DeliveryRow(destination=state.destination, **columns)
        else:
            row.sqlmodel_update(columns)
        self._session.add(row)
