"""Keyset pagination shared by the grant and audit listings."""

from collections.abc import Callable, Sequence
from typing import TypeVar

from broker.service.ports import Page

Row = TypeVar("Row")
Item = TypeVar("Item")


def fetch_size(limit: int) -> int:
    """How many rows to fetch for a page of `limit`: one more tells whether more exist."""
    if limit < 1:
        raise ValueError(f"a page holds at least one item, not {limit}")
    return limit + 1


def page_of(
    rows: Sequence[Row],
    limit: int,
    position: Callable[[Row], int],
    to_domain: Callable[[Row], Item],
) -> Page[Item]:
    """The first `limit` rows as a page; its cursor is the last one's position if more follow."""
    shown = rows[:limit]
    next_cursor = position(shown[-1]) if len(rows) > limit else None
    return Page(items=[to_domain(row) for row in shown], next_cursor=next_cursor)
