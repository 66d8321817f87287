"""Notifications of grant state changes: which audit events are sent, to where, and as what.

The audit trail is the outbox: every state change is audited in the transaction that makes it,
in commit order, so a destination that has been sent every notified event up to id N is sent
the next one after N, and nothing is lost or reordered, whatever dies meanwhile. Delivery is at
least once: a receiver tells a repeat by its event id.

A webhook receives the event as JSON, signed: `X-Accessbroker-Signature: sha256=<hex HMAC-SHA256
of the body>` under the shared secret. The body carries `sent_at`, also in the
`X-Accessbroker-Timestamp` header, so a receiver that checks the signature can also refuse a
replay of an old delivery. Slack receives the same events as incoming-webhook messages.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from broker.domain.audit import AuditAction, AuditEvent

# The grant state changes a destination is told of, by the audit action that records each.
NOTIFIED_ACTIONS = frozenset(
    {
        AuditAction.GRANT_REQUESTED,
        AuditAction.GRANT_APPROVAL_REQUESTED,
        AuditAction.GRANT_APPROVED,
        AuditAction.GRANT_DENIED,
        AuditAction.GRANT_APPROVAL_EXPIRED,
        AuditAction.GRANT_ACTIVE,
        AuditAction.GRANT_EXPIRED,
        AuditAction.GRANT_REVOKED,
        AuditAction.GRANT_FAILED,
    }
)
SIGNATURE_HEADER = "X-Accessbroker-Signature"
TIMESTAMP_HEADER = "X-Accessbroker-Timestamp"
EVENT_ID_HEADER = "X-Accessbroker-Event-Id"


class DeliveryFailed(Exception):
    """A destination did not take a delivery: unreachable, or it answered other than 2xx."""


class DestinationKind(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"


@dataclass(frozen=True)
class Destination:
    """Where notifications go. `key` names it in the broker's records without its URL, which
    can hold a secret (Slack's does); `shown` is the URL with its path hidden."""

    kind: DestinationKind
    url: str
    key: str
    shown: str


@dataclass(frozen=True)
class Delivery:
    """One HTTP POST: its body and headers."""

    body: bytes
    headers: dict[str, str]


def delivery(destination: Destination, event: AuditEvent, secret: bytes, now: datetime) -> Delivery:
    """What `destination` is sent for `event`."""
    if destination.kind is DestinationKind.SLACK:
        return Delivery(_json(slack_message(event)), {"Content-Type": "application/json"})
    sent_at = int(now.timestamp())
    body = _json({**event_document(event), "sent_at": sent_at})
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, body),
        TIMESTAMP_HEADER: str(sent_at),
        EVENT_ID_HEADER: str(event.event_id),
    }
    return Delivery(body, headers)


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def event_document(event: AuditEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "type": event.action,
        "time": event.time.isoformat(),
        "actor": event.actor,
        "grant_id": event.grant_id,
        "instance_id": event.instance_id,
        "outcome": event.outcome.value,
        "detail": event.detail,
    }


def slack_message(event: AuditEvent) -> dict[str, Any]:
    """An incoming-webhook message: what happened, to which access, who asked and why, and for
    a request awaiting approval the command that approves it."""
    detail = event.detail
    access = f"{detail.get('access', '?')} on s3://{detail.get('bucket', '?')}/"
    access += str(detail.get("prefix", ""))
    headline = f"{event.action}: {access} for {event.instance_id}{_where(detail)}"
    facts = [
        f"*Requested by* {detail.get('requested_by', event.actor)}",
        f"*By* {event.actor}",
        f"*Reason* {detail.get('request_reason') or detail.get('reason') or '-'}",
        f"*Grant* `{event.grant_id}`",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts]},
    ]
    if event.action == AuditAction.GRANT_APPROVAL_REQUESTED:
        approvers = ", ".join(detail.get("approvers", []))
        command = f"brokerctl approve {event.grant_id}"
        text = f"Awaiting {detail.get('required', 1)} of {approvers}: `{command}`"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return {"text": headline, "blocks": blocks}


def _where(detail: dict[str, Any]) -> str:
    """ " in eu-west-1, account 222222222222": where the instance lives, when the event says."""
    if "region" not in detail:
        return ""
    account = f", account {detail['account']}" if "account" in detail else ""
    return f" in {detail['region']}{account}"


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
