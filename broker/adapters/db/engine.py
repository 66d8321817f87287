"""Engines for SQLite (development, sandbox) and PostgreSQL (production)."""

import sqlite3

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import SQLAlchemyError

SQLITE_BUSY_TIMEOUT_SECONDS = 30
POOL_SIZE = 32


def create_engine_for(url: str) -> Engine:
    """An engine for `url`, tuned so several threads of one process can write."""
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # pre_ping drops connections a server restart or failover left dead in the pool. Each call
    # in flight may hold an instance lock's connection and a unit of work's at once, so the
    # pool is sized for twice the server's workers.
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_SIZE)


def database_reachable(engine: Engine) -> bool:
    """True when the database answers a trivial query; for the health check."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        # Sessions move between threads of the gRPC server's pool.
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
    )
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _configure_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # Hand transaction control to SQLAlchemy (see _begin_immediate); pysqlite's own
    # implicit BEGIN comes only before DML, so reads would run outside the transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once (SQLITE_BUSY, no
    # waiting) when another connection wrote in between; taking the write lock up front
    # makes concurrent units of work queue on the busy timeout instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
