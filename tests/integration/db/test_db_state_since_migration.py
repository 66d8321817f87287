"""Migration 0004 gives each grant written before it the time it entered its state: its last
update, the best guess there is, which the broker then keeps."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Engine

from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.domain.access import GrantState
from tests.integration.db.test_db_audit_chain_migration import migrate
from tests.places import HOME_REGION

CREATED = datetime(2026, 7, 1, 10, 30, tzinfo=UTC)
UPDATED = CREATED + timedelta(minutes=7)
GRANT_ID = "00000000-0000-4000-8000-000000000001"


def write_released_grant(engine: Engine) -> None:
    """A revoking grant, as release 0003 wrote it."""
    grants = sa.Table("grants", sa.MetaData(), autoload_with=engine)
    text = {c.name: "" for c in grants.columns if isinstance(c.type, sa.String | sa.Text)}
    row = {
        **text,
        "grant_id": GRANT_ID,
        "instance_id": "i-0123456789abcdef0",
        "bucket": "reports",
        "access": "upload",
        "state": "revoking",
        "requested_by": "alice",
        "created_at": CREATED,
        "updated_at": UPDATED,
        "expires_at": None,
    }
    with engine.begin() as connection:
        connection.execute(sa.insert(grants), [row])


def test_grants_written_before_it_are_in_their_state_since_their_last_update(
    blank_engine: Engine,
) -> None:
    migrate(blank_engine, "0003")
    write_released_grant(blank_engine)

    upgrade_to_head(blank_engine, HOME_REGION)

    with sql_unit_of_work_factory(blank_engine)(read_only=True) as uow:
        grant = uow.grants.get(GRANT_ID)
        counts = uow.grants.count_by_state()
    assert grant is not None and grant.state_since == UPDATED
    assert counts[GrantState.REVOKING].oldest_since == UPDATED


def test_it_goes_back_down(blank_engine: Engine) -> None:
    upgrade_to_head(blank_engine)

    migrate(blank_engine, "0003", down=True)

    columns = {c["name"] for c in sa.inspect(blank_engine).get_columns("grants")}
    assert "state_since" not in columns and "updated_at" in columns
