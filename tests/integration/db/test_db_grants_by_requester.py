"""Listing the grants one caller requested, as callers that are not admins see them, paged."""

from collections.abc import Callable

from broker.domain.grants import Grant
from broker.service.ports import GrantFilter, UnitOfWorkFactory
from tests.integration.db.test_db_grant_store import add_all, all_pages

GrantMaker = Callable[..., Grant]


def test_a_requesters_grants_are_listed_across_pages_and_no_others(
    units: UnitOfWorkFactory, make_grant: GrantMaker
) -> None:
    callers = ("svc-ci", "svc-web", "spiffe://example.org/ns/ci/sa/builder")
    grants = [make_grant(requested_by=callers[number % 3]) for number in range(20)]
    add_all(units, grants)

    pages = all_pages(units, GrantFilter(requested_by="svc-web"), limit=2)
    nobodys = all_pages(units, GrantFilter(requested_by="svc-other"), limit=2)

    assert [g for page in pages for g in page] == [g for g in grants if g.requested_by == "svc-web"]
    assert len(pages) > 1
    assert nobodys == [[]]
