"""Fixtures shared by every test suite."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url

from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.sandbox import Emulator
from broker.service.ports import UnitOfWorkFactory
from tests.credentials import CertificateAuthority
from tests.postgres import POSTGRES_URL_VARIABLE, SQL_DATABASES, postgres_schema
from tests.records import GrantMaker, grant_maker

# The suite's skip report and CI's no-skip rule, as hooks of this conftest.
from tests.skips import pytest_sessionfinish, pytest_terminal_summary
from tests.tcp_proxy import TcpProxy

__all__ = ["emulator", "pytest_sessionfinish", "pytest_terminal_summary"]


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One moto server with IAM authorization enforced, shared by the whole session.

    moto's state is process-wide and never reset: use fresh instances and unique names.
    """
    with Emulator() as running:
        yield running


@pytest.fixture
def path() -> str:
    """A path of the test's own: the emulator is shared by the whole session.

    For the tests of what counts as the broker's (tests/contract, tests/integration/aws)."""
    return f"/managed-{uuid.uuid4().hex[:8]}/"


# A freshly migrated database per test, for the SQL store's tests (tests/integration/db) and the
# contract suite (tests/contract, which overrides `database_kind` to add the fake).


@pytest.fixture(params=SQL_DATABASES)
def database_kind(request: pytest.FixtureRequest) -> str:
    """The kind of database the test runs on."""
    kind: str = request.param
    return kind


@pytest.fixture
def database_url(database_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of an empty database of the test's kind."""
    if database_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'broker.db'}"
    # Asked for only here, so the SQLite tests create no schema.
    url: str = request.getfixturevalue("postgres_url")
    return url


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


# PostgreSQL: for the SQL store's tests (through `database_url`), the broker process on
# PostgreSQL (tests/e2e) and losing the database (tests/integration/db, tests/e2e).


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A schema of the test's own on the PostgreSQL server, or a skip saying how to get one."""
    server_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server_url:
        pytest.skip(f"set {POSTGRES_URL_VARIABLE} to run the PostgreSQL tests")
    yield from postgres_schema(server_url)


@pytest.fixture
def postgres_proxy(postgres_url: str) -> Iterator[TcpProxy]:
    """A proxy in front of the PostgreSQL server that a test can cut and restore."""
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


# Credentials for TLS and mTLS (tests/unit/config, tests/unit/entrypoints, tests/e2e).


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    """A certificate authority of the module's own, for TLS and mTLS."""
    return CertificateAuthority()
