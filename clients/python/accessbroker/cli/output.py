"""Rendering: the SDK's values as JSON-ready dicts, aligned tables and readable times."""

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from accessbroker.cli.durations import format_duration
from accessbroker.models import AccessDecision, AuditEvent, Drift, Grant, NotificationDestination


def to_json_value(value: object) -> Any:
    """Dataclasses, enums and datetimes as plain JSON values; datetimes in ISO 8601 (UTC)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum | datetime | timedelta):
        return _scalar(value)
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    return value


def _scalar(value: Enum | datetime | timedelta) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.total_seconds()


def dumps(document: object, *, lines: bool = False) -> str:
    """One JSON document (indented), or one compact line when `lines` (for JSON lines)."""
    if lines:
        return json.dumps(to_json_value(document), separators=(",", ":"), ensure_ascii=False)
    return json.dumps(to_json_value(document), indent=2, ensure_ascii=False)


def format_time(value: datetime | None) -> str:
    """UTC, to the second: 2026-11-28 04:11:22Z; "-" for none."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; the last column is not padded."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, str]]) -> str:
    """A "name: value" block with the values aligned."""
    width = max(len(name) for name, _ in pairs) + 1
    return "\n".join(f"{(name + ':').ljust(width)}  {value or '-'}" for name, value in pairs)


def location(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix}"


GRANT_HEADERS = ("GRANT", "INSTANCE", "ACCESS", "LOCATION", "STATE", "EXPIRES", "CREATED")


def grant_row(grant: Grant) -> list[str]:
    return [
        grant.grant_id,
        grant.instance_id,
        grant.access.value,
        location(grant.bucket, grant.prefix),
        grant.state.value,
        format_time(grant.expires_at),
        format_time(grant.created_at),
    ]


def grants_table(grants: Sequence[Grant], empty: str = "No grants.") -> str:
    if not grants:
        return empty
    return table(GRANT_HEADERS, [grant_row(g) for g in grants])


def place(account: str, region: str) -> str:
    """Where an instance lives: "eu-west-1 in account 222222222222", or the home account's."""
    owner = f"account {account}" if account else "the broker's own account"
    return f"{region or '-'} in {owner}"


def grant_details(grant: Grant) -> str:
    pairs = [
        ("grant", grant.grant_id),
        ("state", grant.state.value),
        ("instance", grant.instance_id),
        ("where", place(grant.account, grant.region)),
        ("access", grant.access.value),
        ("location", location(grant.bucket, grant.prefix)),
        ("expires", format_time(grant.expires_at)),
        ("created", format_time(grant.created_at)),
        ("updated", format_time(grant.updated_at)),
        ("requested by", grant.requested_by),
        ("reason", grant.reason),
        ("role", grant.role_arn or grant.role_name),
        ("instance profile", grant.instance_profile_arn or grant.instance_profile_name),
        ("association", grant.association_id),
    ]
    if grant.failure_reason:
        pairs.insert(2, ("failure", grant.failure_reason))
    if grant.approvals_required:
        pairs[2:2] = _approval_fields(grant)
    return fields(pairs)


def _approval_fields(grant: Grant) -> list[tuple[str, str]]:
    given = ", ".join(a.approver for a in grant.approvals) or "none yet"
    return [
        ("approvers", f"{grant.approvals_required} of {', '.join(grant.approvers)}"),
        ("approved by", given),
    ]


def awaiting_approval(grant: Grant) -> str:
    """What a requester is told when a grant waits (or, in a dry run, would wait) for
    approvers."""
    who = f"{grant.approvals_required} of {', '.join(grant.approvers)}"
    if not grant.grant_id:  # a dry run's grant: nothing was recorded
        return f"It needs approval by {who} before AWS changes.\n"
    return (
        f"Awaiting approval by {who}; nothing changes in AWS until then. "
        f"It lapses at {format_time(grant.expires_at)}.\n"
        f"An approver runs: brokerctl approve {grant.grant_id}\n"
    )


EVENT_HEADERS = ("EVENT", "TIME", "ACTION", "OUTCOME", "INSTANCE", "GRANT", "ACTOR")


def event_row(event: AuditEvent) -> list[str]:
    return [
        str(event.event_id),
        format_time(event.time),
        event.action,
        event.outcome,
        event.instance_id or "-",
        event.grant_id or "-",
        event.actor,
    ]


def event_line(event: AuditEvent) -> str:
    """One event on its own line, for `audit --follow`, in columns that mostly line up."""
    return _follow_line(event_row(event))


def follow_header() -> str:
    return _follow_line(list(EVENT_HEADERS))


def _follow_line(cells: Sequence[str]) -> str:
    event_id, time, action, outcome, instance, grant, actor = cells
    return (
        f"{event_id:>6}  {time:<20}  {action:<28}  {outcome:<7}  {instance:<19}  "
        f"{grant:<36}  {actor}"
    )


def events_table(events: Sequence[AuditEvent]) -> str:
    if not events:
        return "No audit events."
    return table(EVENT_HEADERS, [event_row(e) for e in events])


def policy_text(policy: Mapping[str, Any] | None) -> str:
    if not policy:
        return "(no policy: the instance holds no live grants)"
    return json.dumps(policy, indent=2)


def ttl_text(ttl: timedelta | None) -> str:
    return format_duration(ttl) if ttl else "none"


DESTINATION_HEADERS = ("KIND", "URL", "DELIVERED", "PENDING", "FAILURES", "LAST ATTEMPT", "ERROR")


def destinations_table(destinations: Sequence[NotificationDestination]) -> str:
    if not destinations:
        return "No notification destinations (BROKER_WEBHOOK_URL, BROKER_SLACK_WEBHOOK_URL)."
    rows = [
        [
            d.kind,
            d.url,
            f"through #{d.delivered_through_event_id}",
            str(d.pending_events),
            str(d.failures),
            format_time(d.last_attempt_at),
            d.last_error or "-",
        ]
        for d in destinations
    ]
    return table(DESTINATION_HEADERS, rows)


DRIFT_HEADERS = ("INSTANCE", "KIND", "EXPECTED", "ACTUAL", "REPAIRED")
# Drift cells can hold whole policy documents; the table shows their start, -o json all of them.
DRIFT_CELL_CHARS = 60


def drift_table(drifts: Sequence[Drift], *, repairing: bool) -> str:
    if not drifts:
        return "No drift."
    rows = [
        [
            d.instance_id,
            d.kind.value,
            _clipped(d.expected),
            _clipped(d.actual),
            ("yes" if d.repaired else "no") if repairing else "-",
        ]
        for d in drifts
    ]
    hint = "" if repairing else "\n\nNothing was changed; --repair lets the broker repair it."
    return table(DRIFT_HEADERS, rows) + hint


def _clipped(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= DRIFT_CELL_CHARS else flat[: DRIFT_CELL_CHARS - 1] + "…"


def decision_details(decision: AccessDecision) -> str:
    return fields(
        [
            ("allowed", "yes" if decision.allowed else "no"),
            ("reason", decision.reason),
            ("rule", str(decision.rule or "")),
            ("expires after", _expiry(decision) if decision.allowed else ""),
            ("approval", _approvers(decision)),
        ]
    )


def _approvers(decision: AccessDecision) -> str:
    if not decision.approvals_required:
        return "not needed" if decision.allowed else ""
    return f"{decision.approvals_required} of {', '.join(decision.approvers)}"


def _expiry(decision: AccessDecision) -> str:
    return format_duration(decision.ttl) if decision.ttl else "never (no ttl)"
