"""A freshly migrated database per test: SQLite always, PostgreSQL when a server is given."""

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.domain.access import Access, GrantState
from broker.domain.grants import Grant, GrantScope
from broker.service.ports import UnitOfWorkFactory
from tests.postgres import POSTGRES_URL_VARIABLE, postgres_schema

# Not UTC, so tests show the store hands back UTC whatever offset it was given.
CREATED = datetime(2026, 7, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))

GrantMaker = Callable[..., Grant]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the parametrized kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'broker.db'}"
        return
    server_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server_url:
        pytest.skip(f"set {POSTGRES_URL_VARIABLE} to run the PostgreSQL store tests")
    yield from postgres_schema(server_url)


@pytest.fixture
def blank_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the empty, unmigrated database."""
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(blank_engine: Engine) -> Engine:
    upgrade_to_head(blank_engine)
    return blank_engine


@pytest.fixture
def units(engine: Engine) -> UnitOfWorkFactory:
    return sql_unit_of_work_factory(engine)


@pytest.fixture
def make_grant() -> GrantMaker:
    """Builds a pending grant with every field set; keyword arguments override fields."""
    counter = iter(range(1, 1_000_000))

    def build(**overrides: Any) -> Grant:
        number = next(counter)
        grant = Grant(
            grant_id=f"00000000-0000-4000-8000-{number:012d}",
            instance_id="i-0123456789abcdef0",
            scope=GrantScope(bucket="reports", prefix=f"daily/{number}/", access=Access.UPLOAD),
            state=GrantState.PENDING,
            created_at=CREATED,
            updated_at=CREATED,
            expires_at=CREATED + timedelta(hours=1),
            requested_by="alice@example.com",
            reason="nightly export",
        )
        return replace(grant, **overrides)

    return build
