"""Losing the database: the store reports StoreUnavailable, writes nothing, and recovers."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, make_url
from sqlalchemy.exc import OperationalError

from broker.adapters.db.engine import create_engine_for, database_reachable
from broker.adapters.db.locks import DatabaseInstanceLocks
from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.domain.errors import StoreUnavailable
from broker.service.ports import GrantFilter, UnitOfWorkFactory
from tests.records import GrantMaker
from tests.tcp_proxy import TcpProxy


def _stored(units: UnitOfWorkFactory) -> list[str]:
    with units() as uow:
        return [g.grant_id for g in uow.grants.list(GrantFilter(), after=None, limit=100).items]


# --- SQLite -----------------------------------------------------------------------------------


@pytest.fixture
def sqlite_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    return directory


@pytest.fixture
def sqlite_engine(sqlite_dir: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{sqlite_dir / 'broker.db'}")
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


def test_a_database_that_cannot_be_opened_is_unavailable_until_it_is_back(
    sqlite_dir: Path, sqlite_engine: Engine, make_grant: GrantMaker
) -> None:
    units = sql_unit_of_work_factory(sqlite_engine)
    grant = make_grant()
    sqlite_engine.dispose()  # no pooled connection: the next unit of work has to open the file
    away = sqlite_dir.rename(sqlite_dir.with_name("away"))

    with pytest.raises(StoreUnavailable), units() as uow:
        uow.grants.add(grant)
        uow.commit()
    reachable_while_away = database_reachable(sqlite_engine)
    away.rename(sqlite_dir)

    assert not reachable_while_away
    assert database_reachable(sqlite_engine)
    assert _stored(units) == []


def test_an_io_error_inside_a_unit_of_work_is_unavailable_and_writes_nothing(
    sqlite_engine: Engine, make_grant: GrantMaker
) -> None:
    units = sql_unit_of_work_factory(sqlite_engine)
    first, second = make_grant(), make_grant()
    failing = {"on": False}

    def disk_fails(*_: Any) -> None:
        if failing["on"]:
            raise sqlite3.OperationalError("disk I/O error")

    event.listen(sqlite_engine, "before_cursor_execute", disk_fails)
    with pytest.raises(StoreUnavailable), units() as uow:
        uow.grants.add(first)
        uow.grants.get(first.grant_id)  # flushed: the insert is in the transaction
        failing["on"] = True
        uow.grants.add(second)
        uow.commit()
    failing["on"] = False

    assert _stored(units) == []


def test_a_broken_statement_stays_an_internal_error(
    sqlite_dir: Path, make_grant: GrantMaker
) -> None:
    # An operational error that retrying cannot fix (here, no schema) is not an outage.
    engine = create_engine_for(f"sqlite:///{sqlite_dir / 'blank.db'}")
    units = sql_unit_of_work_factory(engine)

    with pytest.raises(OperationalError, match="no such table"), units() as uow:
        uow.grants.get("some-grant")
    engine.dispose()


# --- PostgreSQL behind a proxy we can cut -------------------------------------------------------


@pytest.fixture
def proxied_engine(postgres_url: str, postgres_proxy: TcpProxy) -> Iterator[Engine]:
    url = make_url(postgres_url).set(host="127.0.0.1", port=postgres_proxy.port)
    engine = create_engine_for(url.render_as_string(hide_password=False))
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


def test_postgres_cut_mid_transaction_is_unavailable_writes_nothing_and_recovers(
    postgres_proxy: TcpProxy, proxied_engine: Engine, make_grant: GrantMaker
) -> None:
    units = sql_unit_of_work_factory(proxied_engine)
    lost, kept = make_grant(), make_grant()

    with pytest.raises(StoreUnavailable), units() as uow:
        uow.grants.add(lost)
        uow.grants.get(lost.grant_id)
        postgres_proxy.cut()
        uow.commit()
    with pytest.raises(StoreUnavailable), units() as uow:
        uow.grants.get(lost.grant_id)  # connecting is refused now
    reachable_while_cut = database_reachable(proxied_engine)
    postgres_proxy.restore()
    with units() as uow:  # the pool threw the dead connections away and connects anew
        uow.grants.add(kept)
        uow.commit()

    assert not reachable_while_cut
    assert database_reachable(proxied_engine)
    assert _stored(units) == [kept.grant_id]


def test_postgres_instance_lock_is_unavailable_while_cut(
    postgres_proxy: TcpProxy, proxied_engine: Engine
) -> None:
    locks = DatabaseInstanceLocks(proxied_engine)
    postgres_proxy.cut()

    with pytest.raises(StoreUnavailable), locks.hold("i-0123456789abcdef0"):
        pass
    postgres_proxy.restore()
    with locks.hold("i-0123456789abcdef0"):
        pass
