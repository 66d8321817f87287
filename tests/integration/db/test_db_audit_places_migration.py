"""Migration 0009 copies the account and region an event's detail names into columns, so the
trail written before it can be read for one place too."""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import Engine

from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.domain.places import PlaceFilter
from broker.service.ports import AuditFilter
from tests.integration.db.test_db_audit_chain_migration import migrate
from tests.places import HOME_REGION

SPOKE = "222222222222"


def write_events_of_release_0008(engine: Engine) -> None:
    events = sa.Table("audit_events", sa.MetaData(), autoload_with=engine)
    details = [
        {"region": HOME_REGION},
        {"region": "eu-west-1", "account": SPOKE},
        {"reason": "about no instance"},
    ]
    rows = [
        {
            "event_id": number,
            "time": datetime(2026, 12, 1, tzinfo=UTC),
            "actor": "alice",
            "action": f"step-{number}",
            "outcome": "success",
            "instance_id": "i-0123456789abcdef0",
            "grant_id": "",
            "detail": json.dumps(detail),
            "prev_hash": "0" * 64,
            "hash": f"{number:064x}",
        }
        for number, detail in enumerate(details, start=1)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(events), rows)


def test_events_written_before_it_are_read_by_place(blank_engine: Engine) -> None:
    migrate(blank_engine, "0008", home_region=HOME_REGION)
    write_events_of_release_0008(blank_engine)

    upgrade_to_head(blank_engine, HOME_REGION)

    def actions_in(places: PlaceFilter) -> list[str]:
        with sql_unit_of_work_factory(blank_engine)(read_only=True) as uow:
            page = uow.audit.list(AuditFilter(places=places), after=None, limit=10)
        return [event.action for event in page.items]

    assert actions_in(PlaceFilter(account="")) == ["step-1"]
    assert actions_in(PlaceFilter(account=SPOKE, region="eu-west-1")) == ["step-2"]
    assert actions_in(PlaceFilter()) == ["step-1", "step-2", "step-3"]


def test_it_goes_back_down(blank_engine: Engine) -> None:
    upgrade_to_head(blank_engine, HOME_REGION)

    migrate(blank_engine, "0008", down=True, home_region=HOME_REGION)

    columns = {c["name"] for c in sa.inspect(blank_engine).get_columns("audit_events")}
    assert not {"account", "region"} & columns
