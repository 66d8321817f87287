"""The migrations build the schema the table classes describe, and run safely twice."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from broker.adapters.db.engine import create_engine_for, database_reachable
from broker.adapters.db.migrate import pending_migrations, upgrade_to_head

BROKER_TABLES = {
    "grants",
    "audit_events",
    "idempotency_keys",
    "instance_records",
    "missing_instances",
    "notification_deliveries",
}


def test_upgrade_creates_the_tables_and_records_the_head(blank_engine: Engine) -> None:
    assert pending_migrations(blank_engine)

    upgrade_to_head(blank_engine)

    # alembic_version in the default schema: on PostgreSQL, the test's own schema.
    assert set(inspect(blank_engine).get_table_names()) == BROKER_TABLES | {"alembic_version"}
    assert _current_revision(blank_engine) == "0009"
    assert not pending_migrations(blank_engine)


def test_upgrade_twice_changes_nothing(engine: Engine) -> None:
    upgrade_to_head(engine)

    assert _current_revision(engine) == "0009"
    assert not pending_migrations(engine)


def test_table_classes_match_the_migrated_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)

    assert differences == []


def test_migrated_database_is_reachable(engine: Engine) -> None:
    assert database_reachable(engine)


def test_unreachable_databases_read_as_down(tmp_path: Path) -> None:
    missing_directory = create_engine_for(f"sqlite:///{tmp_path / 'absent' / 'broker.db'}")
    closed_port = create_engine_for("postgresql+psycopg://postgres@127.0.0.1:1/none")

    assert not database_reachable(missing_directory)
    assert not database_reachable(closed_port)


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
