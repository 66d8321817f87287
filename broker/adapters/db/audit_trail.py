"""Reads the whole audit trail with its hash chain, for `access-broker audit verify`."""

from collections.abc import Iterator

from sqlalchemy import Engine
from sqlmodel import Session

from broker.adapters.db.audit_log import SqlAuditLog
from broker.domain.audit_chain import ChainLink

PAGE_SIZE = 1000


def read_audit_chain(engine: Engine, page_size: int = PAGE_SIZE) -> Iterator[ChainLink]:
    """Every stored event in id order, each page read in its own short transaction.

    Short, because on SQLite every transaction holds the write lock (see
    broker.adapters.db.engine) and the broker keeps appending during a long walk. Each page
    continues after the last id read and ids follow commit order, so events committed
    meanwhile are read at the end, never skipped.
    """
    after: int | None = None
    while True:
        with Session(engine) as session:
            page = SqlAuditLog(session).chain(after, page_size)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor
