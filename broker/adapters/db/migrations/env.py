"""Alembic environment: migrates the connection that broker.adapters.db.migrate hands over."""

from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

# Imported for its side effect: the table classes register on SQLModel.metadata,
# which autogenerate compares against the database.
import broker.adapters.db.tables  # noqa: F401


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrate through broker.adapters.db.migrate, which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _render_item(type_: str, obj: object, _context: AutogenContext) -> str | Literal[False]:
    # UTCDateTime converts only in Python; in the database it is a timezone-aware timestamp,
    # and migrations stay free of SQLModel imports.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


run_migrations()
