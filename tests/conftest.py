"""Fixtures shared by every test suite."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.sandbox import Emulator
from broker.service.ports import UnitOfWorkFactory
from tests.postgres import POSTGRES_URL_VARIABLE, SQL_DATABASES, postgres_schema
from tests.records import GrantMaker, grant_maker

# The suite's skip report and CI's no-skip rule, as hooks of this conftest.
from tests.skips import pytest_sessionfinish, pytest_terminal_summary

__all__ = ["emulator", "pytest_sessionfinish", "pytest_terminal_summary"]


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One moto server with IAM authorization enforced, shared by the whole session.

    moto's state is process-wide and never reset: use fresh instances and unique names.
    """
    with Emulator() as running:
        yield running


# A freshly migrated database per test, for the SQL store's tests (tests/integration/db) and the
# contract suite (tests/contract, which overrides `database_kind` to add the fake).


@pytest.fixture(params=SQL_DATABASES)
def database_kind(request: pytest.FixtureRequest) -> str:
    """The kind of database the test runs on."""
    kind: str = request.param
    return kind


@pytest.fixture
def database_url(database_kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the test's kind."""
    if database_kind == "sqlite":
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
    return grant_maker()
