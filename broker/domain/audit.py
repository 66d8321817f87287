"""Audit events: the durable record of every decision and every AWS change."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

SYSTEM_ACTOR = "system"
# Every caller, when the broker authenticates nobody (BROKER_AUTH_MODE=none).
ANONYMOUS_ACTOR = "anonymous"


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    ERROR = "error"


@dataclass(frozen=True)
class NewAuditEvent:
    """An event about to be written; the store gives it an id and keeps its time."""

    time: datetime
    actor: str
    action: str
    outcome: Outcome
    instance_id: str = ""
    grant_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEvent:
    event_id: int
    time: datetime
    actor: str
    action: str
    outcome: Outcome
    instance_id: str
    grant_id: str
    detail: dict[str, Any]
