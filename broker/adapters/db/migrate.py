"""Schema migrations, run from code: the Alembic scripts ship inside this package."""

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

# A package resource, so it resolves wherever the package is installed.
SCRIPT_LOCATION = "broker.adapters.db:migrations"


def upgrade_to_head(engine: Engine, home_region: str = "") -> None:
    """Applies every migration not yet applied; does nothing on an up-to-date database.
    `home_region`: where the records of a database from before regions belong (migration 0007
    refuses to guess it when there are any)."""
    with engine.begin() as connection:
        config = _alembic_config(connection)
        config.attributes["home_region"] = home_region
        command.upgrade(config, "head")


def pending_migrations(engine: Engine) -> bool:
    """True when the database is behind the newest migration (or not migrated at all)."""
    with engine.connect() as connection:
        applied = set(MigrationContext.configure(connection).get_current_heads())
        newest = set(ScriptDirectory.from_config(_alembic_config(connection)).get_heads())
    return applied != newest


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # env.py migrates this connection rather than opening its own.
    config.attributes["connection"] = connection
    return config
