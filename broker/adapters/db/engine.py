"""Engines for SQLite (development, sandbox) and PostgreSQL (production).

Every engine reports losing its database as the domain's StoreUnavailable, whichever code
used it (a unit of work, an instance lock, the health probe): see _report_outages.
"""

import sqlite3
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from broker.domain.errors import StoreUnavailable

SQLITE_BUSY_TIMEOUT_SECONDS = 30
# Connections per engine, and as many again on demand: each call in flight may hold an
# instance lock's connection and a unit of work's at once, and the server runs 24 workers.
POOL_SIZE = 32
# An execution option: the connection's transactions only read (see _begin).
READ_ONLY = "broker_read_only"
# Bounds on a PostgreSQL server that stops answering, so a call fails instead of hanging:
# connecting, and an open connection whose server went silent (keepalives, unacknowledged
# writes).
POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}
# How long a unit of work waits for a free pooled connection before the call is refused.
POOL_TIMEOUT_SECONDS = 10
# SQLite's operational errors that mean "not now" rather than a bug in a statement.
_SQLITE_OUTAGES = ("database is locked", "unable to open database file", "disk i/o error")
STORE_UNAVAILABLE_MESSAGE = "the broker's database is unavailable; retry later"


def create_engine_for(url: str) -> Engine:
    """An engine for `url`, tuned so several threads of one process can write."""
    if make_url(url).get_backend_name() == "sqlite":
        engine = _sqlite_engine(url)
    else:
        engine = _postgres_engine(url)
    event.listen(engine, "handle_error", _report_outages)
    return engine


def database_reachable(engine: Engine) -> bool:
    """True when the database answers a trivial query; for the health check."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (sa_exc.SQLAlchemyError, StoreUnavailable):
        return False
    return True


def _report_outages(context: ExceptionContext) -> None:
    """Raises StoreUnavailable in place of an error that means the database is out of reach.

    SQLAlchemy still invalidates a broken connection (and the pool, on a disconnect) after
    this raises, and the transaction it held is lost, so the unit of work wrote nothing. The
    pre-ping's failures are left alone: on those the pool quietly reconnects.
    """
    if context.is_pre_ping:
        return
    error = context.sqlalchemy_exception
    if context.is_disconnect or isinstance(error, sa_exc.InterfaceError) or _is_outage(context):
        raise StoreUnavailable(STORE_UNAVAILABLE_MESSAGE) from context.original_exception


def _is_outage(context: ExceptionContext) -> bool:
    if not isinstance(context.sqlalchemy_exception, sa_exc.OperationalError):
        return False
    if context.dialect.name != "sqlite":
        # psycopg's OperationalErrors: connection failures, cancelled statements, deadlocks
        # and serialization failures, all of them worth retrying later.
        return True
    return str(context.original_exception).lower().startswith(_SQLITE_OUTAGES)


class _OutageReportingPool(QueuePool):
    """A pool whose "every connection is busy" is StoreUnavailable, not an internal error."""

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            return super()._do_get()
        except sa_exc.TimeoutError as error:
            raise StoreUnavailable(STORE_UNAVAILABLE_MESSAGE) from error


def _postgres_engine(url: str) -> Engine:
    # pre_ping drops connections a server restart or failover left dead in the pool, so the
    # broker recovers by itself once the database is back.
    return create_engine(
        url,
        poolclass=_OutageReportingPool,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=POOL_SIZE,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args=_postgres_connect_args(url),
    )


def _postgres_connect_args(url: str) -> dict[str, Any]:
    """The bounds above, except those the URL sets itself."""
    given = make_url(url).query
    return {key: value for key, value in POSTGRES_CONNECT_ARGS.items() if key not in given}


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        # Sessions move between threads of the gRPC server's pool.
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        # A file database: enough connections that no worker waits for one to read.
        poolclass=_OutageReportingPool,
        pool_size=POOL_SIZE,
        max_overflow=POOL_SIZE,
        pool_timeout=POOL_TIMEOUT_SECONDS,
    )
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin)
    return engine


def _configure_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # Hand transaction control to SQLAlchemy (see _begin); pysqlite's own
    # implicit BEGIN comes only before DML, so reads would run outside the transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once (SQLITE_BUSY, no
    # waiting) when another connection wrote in between; taking the write lock up front
    # makes concurrent units of work queue on the busy timeout instead. A transaction that
    # only reads needs no lock at all: under WAL it reads a snapshot while writers go on.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
