"""Migration 0002 chains the audit events written before it, and the broker continues the chain."""

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine, inspect

from broker.adapters.db.audit_trail import read_audit_chain
from broker.adapters.db.migrate import _alembic_config, upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.domain.audit_chain import GENESIS_HASH, verify_chain
from tests.records import append_all, audit_event

# The table as release 0001 wrote it: no hash columns.
RELEASED_AUDIT_EVENTS = sa.table(
    "audit_events",
    sa.column("time", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("instance_id", sa.String()),
    sa.column("grant_id", sa.String()),
    sa.column("detail", sa.Text()),
)
MOMENT = datetime(2026, 7, 1, 10, 30, 15, 123456, tzinfo=UTC)


def migrate(engine: Engine, revision: str, *, down: bool = False, home_region: str = "") -> None:
    """Up or down to `revision`; `home_region` as upgrade_to_head takes it (migration 0007 needs
    it, either way, once there are grants or instance records)."""
    with engine.begin() as connection:
        config = _alembic_config(connection)
        config.attributes["home_region"] = home_region
        (command.downgrade if down else command.upgrade)(config, revision)


def write_released_events(engine: Engine, count: int) -> None:
    rows = [
        {
            "time": MOMENT + timedelta(seconds=n),
            "actor": "system",
            "action": f"old-{n}",
            "outcome": "success",
            "instance_id": "i-0123456789abcdef0",
            "grant_id": "",
            "detail": json.dumps({"step": n, "note": "é"}, sort_keys=True),
        }
        for n in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(RELEASED_AUDIT_EVENTS), rows)


def test_events_written_before_the_chain_are_chained_by_the_upgrade(blank_engine: Engine) -> None:
    migrate(blank_engine, "0001")
    write_released_events(blank_engine, 5)

    upgrade_to_head(blank_engine)

    links = list(read_audit_chain(blank_engine, page_size=2))
    assert [link.event.action for link in links] == [f"old-{n}" for n in range(5)]
    assert links[0].prev_hash == GENESIS_HASH
    assert links[0].event.detail == {"step": 0, "note": "é"}
    report = verify_chain(links)
    assert report.broken is None
    assert report.intact_events == 5


def test_the_broker_continues_the_chain_the_upgrade_made(blank_engine: Engine) -> None:
    migrate(blank_engine, "0001")
    write_released_events(blank_engine, 2)
    upgrade_to_head(blank_engine)

    append_all(sql_unit_of_work_factory(blank_engine), [audit_event(1)])

    report = verify_chain(read_audit_chain(blank_engine))
    assert report.broken is None
    assert report.intact_events == 3


def test_downgrade_drops_the_hashes_and_keeps_the_events(engine: Engine) -> None:
    append_all(sql_unit_of_work_factory(engine), [audit_event(1), audit_event(2)])

    migrate(engine, "0001", down=True)
    columns = {column["name"] for column in inspect(engine).get_columns("audit_events")}
    with engine.connect() as connection:
        kept = connection.execute(sa.text("SELECT count(*) FROM audit_events")).scalar_one()
    upgrade_to_head(engine)

    assert "hash" not in columns
    assert "prev_hash" not in columns
    assert kept == 2
    assert verify_chain(read_audit_chain(engine)).intact_events == 2
