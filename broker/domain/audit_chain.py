"""The audit trail as a hash chain: each event stores the hash of the event before it.

An event's hash is the SHA-256 of its canonical JSON, which covers every field (its id too) and
the previous event's hash. Editing an event breaks its own hash; deleting or inserting one, or
rewriting an event together with its hash, breaks the link from the event after it. Only
rewriting every later event as well goes unseen, and so does cutting off the newest events: the
shorter chain is intact. An anchor, an event id and its hash kept outside the database (`audit
verify` prints the newest), catches both on a later verification.

The canonical JSON is a stored format: changing it breaks every chain already written.
"""

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from broker.domain.audit import AuditEvent

# The "previous hash" of the first event ever written.
GENESIS_HASH = "0" * 64
_ANCHOR = re.compile(r"([1-9][0-9]*):([0-9a-f]{64})")


@dataclass(frozen=True)
class ChainLink:
    """An audit event as stored: with the previous event's hash and its own."""

    event: AuditEvent
    prev_hash: str
    hash: str
    # The account and region the store keeps beside the event, to read one place's trail
    # (None: not stored apart): they must be the ones its hashed detail names.
    place: tuple[str, str] | None = None


def place_named(detail: dict[str, object]) -> tuple[str, str]:
    """The account key and region an event's detail names (see audit.where); "" for none."""
    return str(detail.get("account", "")), str(detail.get("region", ""))


@dataclass(frozen=True)
class Anchor:
    """An event id and the hash it had, recorded outside the database."""

    event_id: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> "Anchor":
        """Reads `EVENT_ID:HASH`, as `audit verify` prints it."""
        match = _ANCHOR.fullmatch(text.strip().lower())
        if match is None:
            raise ValueError(
                f"invalid anchor {text!r}: write EVENT_ID:HASH, a positive event id and the "
                "event's 64 hex digit hash, as `audit verify` prints them"
            )
        return cls(event_id=int(match[1]), hash=match[2])

    def __str__(self) -> str:
        return f"{self.event_id}:{self.hash}"


@dataclass(frozen=True)
class BrokenLink:
    event_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking a chain: events found intact, and the first break if any."""

    intact_events: int
    # The newest intact event as an anchor; None for an empty trail.
    newest: Anchor | None
    broken: BrokenLink | None


def canonical_json(event: AuditEvent, prev_hash: str) -> str:
    """The event as one deterministic text: sorted keys, no spaces, ASCII only, time in UTC."""
    document = {
        "event_id": event.event_id,
        "time": _utc_text(event.time),
        "actor": event.actor,
        "action": event.action,
        "outcome": event.outcome.value,
        "instance_id": event.instance_id,
        "grant_id": event.grant_id,
        "detail": event.detail,
        "prev_hash": prev_hash,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    """The hex SHA-256 of the event's canonical JSON, which includes `prev_hash`.

    Any text is taken as `prev_hash`: a tampered newest event must not stop the broker from
    appending; verification reports it.
    """
    return hashlib.sha256(canonical_json(event, prev_hash).encode("ascii")).hexdigest()


def chain_link(prev_hash: str, event: AuditEvent) -> ChainLink:
    """The event chained onto the event whose hash is `prev_hash`."""
    return ChainLink(event=event, prev_hash=prev_hash, hash=chain_hash(prev_hash, event))


def verify_chain(links: Iterable[ChainLink], anchor: Anchor | None = None) -> ChainReport:
    """Recomputes the chain over `links` (in event id order) and stops at the first break.

    With an anchor, the event it names must be in the chain with the hash it records.
    """
    intact = 0
    previous: ChainLink | None = None
    for link in links:
        broken = _break_at(link, previous) or _anchor_break(link, previous, anchor)
        if broken is not None:
            return ChainReport(intact, _anchor_of(previous), broken)
        intact += 1
        previous = link
    if anchor is not None and (previous is None or previous.event.event_id < anchor.event_id):
        missing = BrokenLink(anchor.event_id, "the anchored event is missing: the trail was cut")
        return ChainReport(intact, _anchor_of(previous), missing)
    return ChainReport(intact, _anchor_of(previous), None)


def _break_at(link: ChainLink, previous: ChainLink | None) -> BrokenLink | None:
    event_id = link.event.event_id
    if chain_hash(link.prev_hash, link.event) != link.hash:
        return BrokenLink(event_id, "its content does not match its hash: the event was edited")
    if link.place is not None and link.place != place_named(link.event.detail):
        return BrokenLink(
            event_id, "its account or region, kept apart, differ from its detail: they were edited"
        )
    if previous is None:
        if link.prev_hash != GENESIS_HASH:
            return BrokenLink(
                event_id,
                "it is the first event but does not start the chain: events before it were deleted",
            )
    elif link.prev_hash != previous.hash:
        return BrokenLink(
            event_id,
            f"it does not follow event {previous.event.event_id}, the one before it: events "
            "between them were deleted or inserted, or that event was rewritten",
        )
    return None


def _anchor_break(
    link: ChainLink, previous: ChainLink | None, anchor: Anchor | None
) -> BrokenLink | None:
    """A break when `link` is where the anchored event should be and is not that event."""
    if anchor is None or link.event.event_id < anchor.event_id:
        return None
    if previous is not None and previous.event.event_id >= anchor.event_id:
        return None  # checked already
    if link.event.event_id > anchor.event_id:
        return BrokenLink(anchor.event_id, "the anchored event is missing: it was deleted")
    if link.hash != anchor.hash:
        return BrokenLink(
            anchor.event_id,
            "its hash differs from the anchor: the trail was rewritten up to this event",
        )
    return None


def _anchor_of(link: ChainLink | None) -> Anchor | None:
    return Anchor(link.event.event_id, link.hash) if link is not None else None


def _utc_text(moment: datetime) -> str:
    # astimezone() would take a naive time for local time and hash a different instant.
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: audit times are aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
