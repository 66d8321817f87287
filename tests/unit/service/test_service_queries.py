"""The read-only use cases over fakes: validation, filters and pagination."""

import uuid
from typing import Any

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.errors import GrantNotFound, InstanceNotFound, InvalidRequest
from broker.domain.grants import Grant
from broker.domain.policy import render
from broker.service.commands import (
    DescribeInstanceAccess,
    GetGrant,
    ListAuditEvents,
    ListGrants,
    RevokeAccess,
)
from tests.places import at_home
from tests.unit.service.fakes import (
    INSTANCE,
    OTHER_INSTANCE,
    World,
    grant_command,
    policy_of,
)

# The instances that exist in the world `w` (tests/unit/conftest.py).
INSTANCES = (INSTANCE, OTHER_INSTANCE)


def grant(w: World, bucket: str, instance_id: str = INSTANCE) -> Grant:
    return w.handle(grant_command(bucket, instance_id=instance_id)).grant


def ids(grants: list[Grant]) -> list[str]:
    return [g.grant_id for g in grants]


@pytest.mark.parametrize(
    "grant_id",
    ["", "nope", "6F1C2B9E-0D4A-4C1E-9A57-3B8F2E1D7C40", "{6f1c2b9e-0d4a-4c1e-9a57-3b8f2e1d7c40}"],
)
def test_get_grant_refuses_a_malformed_id(w: World, grant_id: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        w.handle(GetGrant(grant_id=grant_id))
    assert [v.field for v in raised.value.violations] == ["grant_id"]


def test_get_grant_finds_the_grant_or_reports_not_found(w: World) -> None:
    granted = grant(w, "photos")
    assert w.handle(GetGrant(grant_id=granted.grant_id)) == granted
    with pytest.raises(GrantNotFound):
        w.handle(GetGrant(grant_id=str(uuid.uuid4())))


def test_list_grants_filters_by_instance_bucket_and_state(w: World) -> None:
    a = grant(w, "photos")
    b = grant(w, "logs")
    c = grant(w, "photos", OTHER_INSTANCE)
    w.handle(RevokeAccess(grant_id=b.grant_id))

    def listed(**where: Any) -> list[str]:
        return ids(w.handle(ListGrants(**where)).items)

    assert listed() == ids([a, b, c])
    assert listed(instance_id=INSTANCE) == ids([a, b])
    assert listed(bucket="photos") == ids([a, c])
    assert listed(state=GrantState.REVOKED) == ids([b])
    assert listed(instance_id=INSTANCE, bucket="photos", state=GrantState.ACTIVE) == ids([a])
    assert listed(bucket="nothing-here") == []


def test_list_grants_pages_through_everything_once(w: World) -> None:
    granted = [grant(w, f"bucket-{n}") for n in range(5)]

    seen: list[str] = []
    cursor: int | None = None
    pages = 0
    while True:
        page = w.handle(ListGrants(page_size=2, after=cursor))
        assert len(page.items) <= 2
        seen += ids(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == ids(granted)
    assert pages == 3


@pytest.mark.parametrize("page_size", [-1, 1001])
def test_list_grants_refuses_page_sizes_out_of_bounds(w: World, page_size: int) -> None:
    with pytest.raises(InvalidRequest) as raised:
        w.handle(ListGrants(page_size=page_size, after=None))
    assert [v.field for v in raised.value.violations] == ["page_size"]


def test_list_grants_accepts_the_page_size_bounds(w: World) -> None:
    grant(w, "photos")
    assert len(w.handle(ListGrants(page_size=1000, after=None)).items) == 1
    assert len(w.handle(ListGrants(page_size=0, after=None)).items) == 1


def test_list_grants_names_every_bad_filter(w: World) -> None:
    with pytest.raises(InvalidRequest) as raised:
        w.handle(ListGrants(instance_id="box-1", bucket="B", page_size=5000, after=None))
    assert {v.field for v in raised.value.violations} == {"instance_id", "bucket", "page_size"}


def test_describe_instance_shows_resources_policy_and_live_grants(w: World) -> None:
    photos = grant(w, "photos")
    logs = grant(w, "logs")
    w.handle(RevokeAccess(grant_id=logs.grant_id))

    access = w.handle(DescribeInstanceAccess(instance_id=INSTANCE))

    assert access.instance == at_home(INSTANCE)
    assert access.resources == w.grant_of(photos.grant_id).resources
    assert access.resources.association_id == w.aws.associations[INSTANCE].association_id
    assert access.policy_document == render(policy_of(("photos", "", Access.UPLOAD)))
    assert ids(access.grants) == [photos.grant_id]


def test_describe_instance_of_an_instance_without_grants_is_empty(w: World) -> None:
    access = w.handle(DescribeInstanceAccess(instance_id=OTHER_INSTANCE))
    assert (access.grants, access.policy_document, access.resources.role_arn) == ([], "", "")


def test_describe_instance_of_an_unknown_instance_is_not_found(w: World) -> None:
    with pytest.raises(InstanceNotFound):
        w.handle(DescribeInstanceAccess(instance_id="i-00000000"))
    with pytest.raises(InvalidRequest):
        w.handle(DescribeInstanceAccess(instance_id="web-1"))


def test_list_audit_events_filters_by_grant_and_instance(w: World) -> None:
    photos = grant(w, "photos")
    grant(w, "photos", OTHER_INSTANCE)

    by_grant = w.handle(ListAuditEvents(grant_id=photos.grant_id, page_size=0, after=None)).items
    assert [e.action for e in by_grant] == ["grant.requested", "grant.active"]

    by_instance = w.handle(ListAuditEvents(instance_id=OTHER_INSTANCE, page_size=0, after=None))
    assert {e.instance_id for e in by_instance.items} == {OTHER_INSTANCE}
    assert [e.action for e in by_instance.items][:2] == ["grant.requested", "aws.create_role"]
    assert len(by_instance.items) == 7

    everything = w.handle(ListAuditEvents(page_size=0, after=None)).items
    assert len(everything) == 14
    assert [e.event_id for e in everything] == sorted(e.event_id for e in everything)


def test_list_audit_events_pages(w: World) -> None:
    grant(w, "photos")
    first = w.handle(ListAuditEvents(page_size=4, after=None))
    assert len(first.items) == 4
    assert first.next_cursor is not None
    rest = w.handle(ListAuditEvents(page_size=4, after=first.next_cursor))
    assert (len(rest.items), rest.next_cursor) == (3, None)
    assert {e.event_id for e in first.items}.isdisjoint(e.event_id for e in rest.items)


def test_list_audit_events_validates_filters_and_page_size(w: World) -> None:
    with pytest.raises(InvalidRequest) as raised:
        w.handle(ListAuditEvents(instance_id="x", grant_id="y", page_size=-5, after=None))
    assert {v.field for v in raised.value.violations} == {"instance_id", "grant_id", "page_size"}
