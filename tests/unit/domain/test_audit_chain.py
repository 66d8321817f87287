"""The audit hash chain: canonical events, and verification finding the first broken link."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.audit import AuditEvent, Outcome
from broker.domain.audit_chain import (
    GENESIS_HASH,
    Anchor,
    BrokenLink,
    ChainLink,
    canonical_json,
    chain_hash,
    chain_link,
    verify_chain,
)

MOMENT = datetime(2026, 7, 1, 10, 30, 15, 123456, tzinfo=UTC)
EDITED = "its content does not match its hash: the event was edited"


def event(event_id: int, **overrides: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "time": MOMENT + timedelta(seconds=event_id),
        "actor": "alice@example.com",
        "action": f"step-{event_id}",
        "outcome": Outcome.SUCCESS,
        "instance_id": "i-0123456789abcdef0",
        "grant_id": "00000000-0000-4000-8000-000000000001",
        "detail": {"policy": {"sha256": "ab" * 32}, "statements": ["Upload"]},
    }
    return AuditEvent(**(fields | overrides))


def chained(events: list[AuditEvent]) -> list[ChainLink]:
    links: list[ChainLink] = []
    for each in events:
        links.append(chain_link(links[-1].hash if links else GENESIS_HASH, each))
    return links


def chain_of(count: int) -> list[ChainLink]:
    return chained([event(n) for n in range(1, count + 1)])


def test_the_hash_of_a_known_event_never_changes() -> None:
    # Pins the stored format: a different hash here breaks every chain already written.
    assert chain_hash(GENESIS_HASH, event(1)) == (
        "127e45a0a1fce7a0d33123da8a4958200eee28df1e91bd144fa775f28a5eb7d3"
    )


def test_canonical_json_is_compact_sorted_and_in_utc() -> None:
    text = canonical_json(event(7, detail={"b": 1, "a": "é"}), GENESIS_HASH)

    assert text == (
        '{"action":"step-7","actor":"alice@example.com","detail":{"a":"\\u00e9","b":1},'
        '"event_id":7,"grant_id":"00000000-0000-4000-8000-000000000001",'
        '"instance_id":"i-0123456789abcdef0","outcome":"success",'
        f'"prev_hash":"{GENESIS_HASH}","time":"2026-07-01T10:30:22.123456Z"}}'
    )


def test_the_same_moment_in_any_offset_hashes_the_same() -> None:
    elsewhere = MOMENT.astimezone(timezone(timedelta(hours=-7)))

    assert chain_hash(GENESIS_HASH, event(1, time=elsewhere)) == chain_hash(
        GENESIS_HASH, event(1, time=MOMENT)
    )


def test_a_naive_time_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        chain_hash(GENESIS_HASH, event(1, time=datetime(2026, 7, 1, 10, 30)))


@pytest.mark.parametrize(
    "change",
    [
        {"event_id": 2},
        {"time": MOMENT + timedelta(microseconds=1)},
        {"actor": "mallory"},
        {"action": "step-9"},
        {"outcome": Outcome.DENIED},
        {"instance_id": "i-0fedcba9876543210"},
        {"grant_id": ""},
        {"detail": {"policy": {"sha256": "cd" * 32}, "statements": ["Upload"]}},
    ],
    ids=lambda change: next(iter(change)),
)
def test_every_field_is_covered_by_the_hash(change: dict[str, Any]) -> None:
    original = event(1, time=MOMENT)

    assert chain_hash(GENESIS_HASH, replace(original, **change)) != chain_hash(
        GENESIS_HASH, original
    )


def test_the_previous_hash_is_covered_by_the_hash() -> None:
    assert chain_hash(GENESIS_HASH, event(1)) != chain_hash("1" * 64, event(1))


@given(st.integers(min_value=0, max_value=30))
def test_a_chain_as_written_is_intact(count: int) -> None:
    links = chain_of(count)

    report = verify_chain(iter(links))

    assert report.broken is None
    assert report.intact_events == count
    assert report.newest == (Anchor(count, links[-1].hash) if links else None)


@given(st.integers(min_value=1, max_value=12), st.data())
def test_an_edited_event_is_the_first_broken_link(count: int, data: st.DataObject) -> None:
    links = chain_of(count)
    index = data.draw(st.integers(min_value=0, max_value=count - 1))
    edited = replace(links[index], event=replace(links[index].event, actor="mallory"))

    report = verify_chain([*links[:index], edited, *links[index + 1 :]])

    assert report.broken == BrokenLink(index + 1, EDITED)
    assert report.intact_events == index


def test_a_deleted_event_breaks_the_link_from_the_next() -> None:
    links = chain_of(5)

    report = verify_chain([*links[:2], *links[3:]])

    assert report.broken == BrokenLink(
        4,
        "it does not follow event 2, the one before it: events between them were deleted or "
        "inserted, or that event was rewritten",
    )
    assert report.newest == Anchor(2, links[1].hash)


def test_deleting_the_first_events_is_seen() -> None:
    report = verify_chain(chain_of(5)[2:])

    assert report.broken is not None
    assert report.broken.event_id == 3
    assert "does not start the chain" in report.broken.reason


def test_an_inserted_event_with_a_valid_hash_breaks_the_link_after_it() -> None:
    links = chain_of(4)
    forged = chain_link(links[1].hash, event(2, actor="mallory"))

    report = verify_chain([*links[:2], forged, *links[2:]])

    assert report.broken is not None
    assert report.broken.event_id == links[2].event.event_id
    assert "does not follow event 2" in report.broken.reason


def test_a_rewritten_event_with_a_recomputed_hash_breaks_the_link_after_it() -> None:
    links = chain_of(4)
    rewritten = chain_link(links[0].hash, replace(links[1].event, detail={}))

    report = verify_chain([links[0], rewritten, *links[2:]])

    assert report.broken is not None
    assert report.broken.event_id == 3
    assert "does not follow event 2" in report.broken.reason


def test_a_tampered_previous_hash_counts_as_an_edit() -> None:
    links = chain_of(3)

    report = verify_chain([links[0], replace(links[1], prev_hash="not a hash"), links[2]])

    assert report.broken == BrokenLink(2, EDITED)


def test_a_cut_tail_leaves_an_intact_chain_that_only_an_anchor_shows() -> None:
    links = chain_of(5)
    anchor = Anchor(5, links[-1].hash)

    without_anchor = verify_chain(links[:3])
    with_anchor = verify_chain(links[:3], anchor)

    assert without_anchor.broken is None
    assert with_anchor.broken == BrokenLink(5, "the anchored event is missing: the trail was cut")
    assert with_anchor.intact_events == 3


def test_an_anchor_held_by_the_chain_passes() -> None:
    links = chain_of(5)

    report = verify_chain(links, Anchor(3, links[2].hash))

    assert report.broken is None
    assert report.intact_events == 5


def test_an_anchored_event_with_another_hash_breaks_there() -> None:
    links = chain_of(5)

    report = verify_chain(links, Anchor(3, "f" * 64))

    assert report.broken is not None
    assert report.broken.event_id == 3
    assert "differs from the anchor" in report.broken.reason


def test_an_anchored_event_deleted_and_the_chain_resealed_is_missing() -> None:
    links = chain_of(4)
    resealed = chained([links[0].event, links[1].event, links[3].event])

    report = verify_chain(resealed, Anchor(3, links[2].hash))

    assert report.broken == BrokenLink(3, "the anchored event is missing: it was deleted")


def test_an_anchor_on_an_empty_trail_is_missing() -> None:
    report = verify_chain([], Anchor(1, "a" * 64))

    assert report.broken is not None
    assert report.broken.event_id == 1
    assert report.newest is None


def test_an_anchor_reads_as_it_is_printed() -> None:
    anchor = Anchor(42, "ab" * 32)

    assert Anchor.parse(f" {str(anchor).upper()} ") == anchor


@pytest.mark.parametrize("text", ["", "42", "42:", "0:" + "a" * 64, "x:" + "a" * 64, "1:abc"])
def test_an_anchor_that_is_not_id_colon_hash_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid anchor .* EVENT_ID:HASH"):
        Anchor.parse(text)
