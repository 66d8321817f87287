"""The audit hash chain on a real database: appends chain up, raw SQL tampering is caught."""

import json
import threading
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from broker.adapters.db.audit_trail import read_audit_chain
from broker.adapters.db.tables import AuditEventRow
from broker.domain.audit_chain import (
    GENESIS_HASH,
    Anchor,
    BrokenLink,
    ChainLink,
    ChainReport,
    chain_link,
    verify_chain,
)
from broker.service.ports import UnitOfWorkFactory
from tests.records import append_all, audit_event

EDITED = "its content does not match its hash: the event was edited"
Tamper = Callable[[Engine, list[ChainLink]], None]


def verify(engine: Engine, anchor: Anchor | None = None) -> ChainReport:
    return verify_chain(read_audit_chain(engine, page_size=2), anchor)


def stored_chain(engine: Engine) -> list[ChainLink]:
    return list(read_audit_chain(engine))


def run_sql(engine: Engine, statement: str, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement), values)


def test_appended_events_form_one_intact_chain(engine: Engine, units: UnitOfWorkFactory) -> None:
    append_all(units, [audit_event(1), audit_event(2)])
    append_all(units, [audit_event(3)])

    links = stored_chain(engine)

    assert [link.event.action for link in links] == ["step-1", "step-2", "step-3"]
    assert links[0].prev_hash == GENESIS_HASH
    assert [link.prev_hash for link in links[1:]] == [link.hash for link in links[:-1]]
    assert verify(engine) == ChainReport(3, Anchor(links[-1].event.event_id, links[-1].hash), None)


def test_the_chain_is_read_in_pages_and_whole(engine: Engine, units: UnitOfWorkFactory) -> None:
    append_all(units, [audit_event(n) for n in range(7)])

    for page_size in (1, 3, 7, 100):
        links = list(read_audit_chain(engine, page_size=page_size))
        assert [link.event.action for link in links] == [f"step-{n}" for n in range(7)]


def test_a_rolled_back_append_leaves_the_chain_intact(
    engine: Engine, units: UnitOfWorkFactory
) -> None:
    append_all(units, [audit_event(1)])
    with units() as abandoned:
        abandoned.audit.append(audit_event(2))
    append_all(units, [audit_event(3)])

    report = verify(engine)

    # On PostgreSQL the abandoned append used up an id: gaps are not breaks.
    assert report.broken is None
    assert report.intact_events == 2


def edit_detail(engine: Engine, links: list[ChainLink]) -> None:
    statement = "UPDATE audit_events SET detail = :detail WHERE event_id = :id"
    run_sql(engine, statement, detail='{"approved": true}', id=eid(links, 3))


def edit_actor(engine: Engine, links: list[ChainLink]) -> None:
    run_sql(engine, "UPDATE audit_events SET actor = 'x' WHERE event_id = :id", id=eid(links, 2))


def move_to_another_account(engine: Engine, links: list[ChainLink]) -> None:
    """Edits the column the place filter reads, leaving the hashed detail as it was."""
    statement = "UPDATE audit_events SET account = '222222222222' WHERE event_id = :id"
    run_sql(engine, statement, id=eid(links, 2))


def delete_middle(engine: Engine, links: list[ChainLink]) -> None:
    run_sql(engine, "DELETE FROM audit_events WHERE event_id = :id", id=eid(links, 3))


def delete_first(engine: Engine, links: list[ChainLink]) -> None:
    run_sql(engine, "DELETE FROM audit_events WHERE event_id = :id", id=eid(links, 1))


def rewrite_with_new_hash(engine: Engine, links: list[ChainLink]) -> None:
    """Edits event 3 and stores the hash its new content has: only event 4 shows it."""
    rewritten = chain_link(links[2].prev_hash, replace(links[2].event, actor="mallory"))
    run_sql(
        engine,
        "UPDATE audit_events SET actor = 'mallory', hash = :hash WHERE event_id = :id",
        hash=rewritten.hash,
        id=rewritten.event.event_id,
    )


def insert_before_first(engine: Engine, links: list[ChainLink]) -> None:
    """Inserts an event chained correctly from the genesis hash, ahead of event 1."""
    forged = chain_link(GENESIS_HASH, replace(links[0].event, event_id=0, actor="mallory"))
    event = forged.event
    with Session(engine) as session:
        session.add(
            AuditEventRow(
                event_id=event.event_id,
                time=event.time,
                actor=event.actor,
                action=event.action,
                outcome=event.outcome.value,
                instance_id=event.instance_id,
                grant_id=event.grant_id,
                detail=json.dumps(event.detail),
                prev_hash=forged.prev_hash,
                hash=forged.hash,
            )
        )
        session.commit()


@pytest.mark.parametrize(
    ("tamper", "broken_at", "reason"),
    [
        (edit_detail, 3, EDITED),
        (edit_actor, 2, EDITED),
        (move_to_another_account, 2, "its account or region, kept apart, differ from its detail"),
        (delete_middle, 4, "it does not follow event {2}, the one before it"),
        (delete_first, 2, "it is the first event but does not start the chain"),
        (rewrite_with_new_hash, 4, "it does not follow event {3}, the one before it"),
        (insert_before_first, 1, "it does not follow event 0, the one before it"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_tampering_is_reported_at_the_first_broken_link(
    engine: Engine, units: UnitOfWorkFactory, tamper: Tamper, broken_at: int, reason: str
) -> None:
    append_all(units, [audit_event(n) for n in range(1, 6)])
    links = stored_chain(engine)

    tamper(engine, links)
    report = verify(engine)

    assert report.broken is not None
    assert report.broken.event_id == eid(links, broken_at)
    expected = reason.format(*(eid(links, n) for n in range(6)))
    assert report.broken.reason.startswith(expected)


def test_deleting_the_newest_event_needs_an_anchor_to_be_seen(
    engine: Engine, units: UnitOfWorkFactory
) -> None:
    append_all(units, [audit_event(n) for n in range(1, 4)])
    before = verify(engine)
    links = stored_chain(engine)

    run_sql(engine, "DELETE FROM audit_events WHERE event_id = :id", id=eid(links, 3))

    assert before.newest is not None
    assert verify(engine).broken is None
    assert verify(engine, before.newest) == ChainReport(
        2,
        Anchor(eid(links, 2), links[1].hash),
        BrokenLink(before.newest.event_id, "the anchored event is missing: the trail was cut"),
    )


def test_a_tampered_newest_event_does_not_stop_appends(
    engine: Engine, units: UnitOfWorkFactory
) -> None:
    append_all(units, [audit_event(1), audit_event(2)])
    newest = stored_chain(engine)[-1].event.event_id
    run_sql(engine, "UPDATE audit_events SET hash = 'x' WHERE event_id = :id", id=newest)

    append_all(units, [audit_event(3)])

    assert verify(engine).broken == BrokenLink(newest, EDITED)
    assert len(stored_chain(engine)) == 3


def test_concurrent_appends_still_form_one_chain(engine: Engine, units: UnitOfWorkFactory) -> None:
    writers, events_each = 8, 5
    start = threading.Barrier(writers)

    def write(writer: int) -> None:
        start.wait()
        for n in range(events_each):
            append_all(units, [audit_event(writer * 100 + n)])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    report = verify(engine)
    assert report.broken is None
    assert report.intact_events == writers * events_each


def eid(links: list[ChainLink], number: int) -> int:
    """The stored id of the `number`th event appended (1-based); 0 before the first."""
    return links[number - 1].event.event_id if number else 0
