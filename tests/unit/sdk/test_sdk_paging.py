"""list_grants and audit follow next_page_token across pages, fetching a page only when needed."""

from accessbroker import BrokerClient
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import FakeBroker
from tests.unit.sdk.messages import INSTANCE, event_message, grant_message


def test_list_grants_follows_page_tokens_to_the_last_page(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer(
        "ListGrants",
        pb.ListGrantsResponse(
            grants=[grant_message("g1"), grant_message("g2")], next_page_token="t2"
        ),
        pb.ListGrantsResponse(grants=[grant_message("g3")], next_page_token="t3"),
        pb.ListGrantsResponse(grants=[grant_message("g4")]),
    )

    grants = list(client.list_grants(instance_id=INSTANCE, bucket="reports", state="active"))

    assert [g.grant_id for g in grants] == ["g1", "g2", "g3", "g4"]
    requests = fake.requests("ListGrants", pb.ListGrantsRequest)
    assert [r.page_token for r in requests] == ["", "t2", "t3"]
    assert {(r.instance_id, r.bucket, r.state) for r in requests} == {
        (INSTANCE, "reports", pb.GRANT_STATE_ACTIVE)
    }


def test_list_grants_fetches_the_next_page_only_when_iterated_that_far(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer(
        "ListGrants",
        pb.ListGrantsResponse(grants=[grant_message("g1")], next_page_token="t2"),
        pb.ListGrantsResponse(grants=[grant_message("g2")]),
    )

    grants = client.list_grants()
    first = next(grants)

    assert first.grant_id == "g1"
    assert len(fake.calls["ListGrants"]) == 1
    assert [g.grant_id for g in grants] == ["g2"]
    assert len(fake.calls["ListGrants"]) == 2


def test_an_empty_page_with_a_token_is_followed(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer(
        "ListGrants",
        pb.ListGrantsResponse(next_page_token="t2"),
        pb.ListGrantsResponse(grants=[grant_message("g1")]),
    )

    assert [g.grant_id for g in client.list_grants()] == ["g1"]


def test_audit_follows_page_tokens_to_the_last_page(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer(
        "ListAuditEvents",
        pb.ListAuditEventsResponse(
            events=[event_message(1), event_message(2)], next_page_token="a2"
        ),
        pb.ListAuditEventsResponse(events=[event_message(3)], next_page_token="a3"),
        pb.ListAuditEventsResponse(events=[event_message(4)]),
    )

    events = list(client.audit(instance_id=INSTANCE))

    assert [e.event_id for e in events] == [1, 2, 3, 4]
    requests = fake.requests("ListAuditEvents", pb.ListAuditEventsRequest)
    assert [r.page_token for r in requests] == ["", "a2", "a3"]
    assert {r.instance_id for r in requests} == {INSTANCE}
