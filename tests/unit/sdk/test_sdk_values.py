"""Access levels, states and ttls as callers write them, and how they reach the wire."""

from datetime import timedelta

import pytest

from accessbroker import Access, BrokerClient, GrantState
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import FakeBroker
from tests.unit.sdk.messages import GRANT_ID, INSTANCE, grant_message


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("upload", Access.UPLOAD),
        ("read", Access.READ),
        ("read-write", Access.READ_WRITE),
        ("read_write", Access.READ_WRITE),
        ("READ_WRITE", Access.READ_WRITE),
        (" List ", Access.LIST),
        (Access.READ, Access.READ),
    ],
)
def test_access_accepts_the_enum_and_common_spellings(
    written: Access | str, expected: Access
) -> None:
    assert Access.parse(written) is expected


@pytest.mark.parametrize("written", ["write", "", "readwrite", "ACCESS_UPLOAD"])
def test_unknown_access_is_a_value_error_naming_the_choices(written: str) -> None:
    with pytest.raises(ValueError, match="expected one of upload, read, read-write, list"):
        Access.parse(written)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("active", GrantState.ACTIVE),
        ("REVOKED", GrantState.REVOKED),
        (" pending ", GrantState.PENDING),
        (GrantState.EXPIRED, GrantState.EXPIRED),
    ],
)
def test_state_accepts_the_enum_and_names(written: GrantState | str, expected: GrantState) -> None:
    assert GrantState.parse(written) is expected


def test_unknown_state_is_a_value_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown state 'done'") as raised:
        GrantState.parse("done")

    assert "pending, active, failed, revoking, revoked, expired" in str(raised.value)


def test_failed_revoked_expired_and_denied_are_final() -> None:
    assert {s for s in GrantState if s.is_final} == {
        GrantState.FAILED,
        GrantState.REVOKED,
        GrantState.EXPIRED,
        GrantState.DENIED,
    }
    assert GrantState.parse("awaiting-approval") is GrantState.AWAITING_APPROVAL


@pytest.mark.parametrize(
    ("access", "wire"),
    [
        ("upload", pb.ACCESS_UPLOAD),
        ("read", pb.ACCESS_READ),
        ("read-write", pb.ACCESS_READ_WRITE),
        ("READ_WRITE", pb.ACCESS_READ_WRITE),
        (Access.LIST, pb.ACCESS_LIST),
    ],
)
def test_grant_sends_the_access_level(
    fake: FakeBroker, client: BrokerClient, access: Access | str, wire: "pb.Access.ValueType"
) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message()))

    client.grant(INSTANCE, "reports", access)

    assert fake.requests("GrantAccess", pb.GrantAccessRequest)[0].access == wire


def test_grant_with_an_unknown_access_sends_nothing(fake: FakeBroker, client: BrokerClient) -> None:
    with pytest.raises(ValueError, match="unknown access 'write'"):
        client.grant(INSTANCE, "reports", "write")

    assert fake.calls["GrantAccess"] == []


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [
        (timedelta(hours=8), timedelta(hours=8)),
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1, milliseconds=500)),
    ],
)
def test_ttl_is_a_timedelta_or_seconds(
    fake: FakeBroker, client: BrokerClient, ttl: timedelta | float, expected: timedelta
) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message()))

    client.grant(INSTANCE, "reports", "upload", ttl=ttl)

    request = fake.requests("GrantAccess", pb.GrantAccessRequest)[0]
    assert request.HasField("ttl")
    assert request.ttl.ToTimedelta() == expected


def test_no_ttl_leaves_the_field_unset(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message()))

    client.grant(INSTANCE, "reports", "upload")

    assert not fake.requests("GrantAccess", pb.GrantAccessRequest)[0].HasField("ttl")


@pytest.mark.parametrize("ttl", [0, -5, timedelta(0), timedelta(seconds=-1)])
def test_a_ttl_that_is_not_positive_is_refused_before_sending(
    fake: FakeBroker, client: BrokerClient, ttl: timedelta | float
) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        client.grant(INSTANCE, "reports", "upload", ttl=ttl)

    assert fake.calls["GrantAccess"] == []


def test_grant_sends_every_field(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message()))

    client.grant(
        INSTANCE,
        "reports",
        "read",
        prefix="nightly/",
        ttl=timedelta(minutes=30),
        reason="backfill",
        idempotency_key="ticket-42",
        dry_run=True,
    )

    request = fake.requests("GrantAccess", pb.GrantAccessRequest)[0]
    ttl = request.ttl
    assert request == pb.GrantAccessRequest(
        instance_id=INSTANCE,
        bucket="reports",
        access=pb.ACCESS_READ,
        prefix="nightly/",
        ttl=ttl,
        reason="backfill",
        idempotency_key="ticket-42",
        dry_run=True,
    )
    assert ttl.ToTimedelta() == timedelta(minutes=30)


def test_revoke_sends_its_fields(fake: FakeBroker, client: BrokerClient) -> None:
    revoked = grant_message(state=pb.GRANT_STATE_REVOKED)
    fake.answer("RevokeAccess", pb.RevokeAccessResponse(grant=revoked))

    result = client.revoke("g-1", reason="done", idempotency_key="ticket-43")

    assert fake.requests("RevokeAccess", pb.RevokeAccessRequest) == [
        pb.RevokeAccessRequest(grant_id="g-1", reason="done", idempotency_key="ticket-43")
    ]
    assert result.state is GrantState.REVOKED


def test_list_grants_sends_its_filters(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("ListGrants", pb.ListGrantsResponse())

    assert list(client.list_grants(instance_id=INSTANCE, bucket="reports", state="ACTIVE")) == []
    assert list(client.list_grants(state=GrantState.REVOKING)) == []

    assert fake.requests("ListGrants", pb.ListGrantsRequest) == [
        pb.ListGrantsRequest(instance_id=INSTANCE, bucket="reports", state=pb.GRANT_STATE_ACTIVE),
        pb.ListGrantsRequest(state=pb.GRANT_STATE_REVOKING),
    ]


def test_list_grants_with_an_unknown_state_is_a_value_error(client: BrokerClient) -> None:
    with pytest.raises(ValueError, match="expected one of"):
        list(client.list_grants(state="live"))


def test_a_state_newer_than_this_client_is_a_clear_error(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("GetGrant", grant_message(state=99))  # type: ignore[arg-type]

    with pytest.raises(ValueError, match=r"grant state 99.*upgrade accessbroker-client"):
        client.get(GRANT_ID)


@pytest.mark.parametrize("value", [1, None, b"upload"])
def test_access_that_is_not_text_is_a_value_error(value: object) -> None:
    with pytest.raises(ValueError, match="must be an Access or its name"):
        Access.parse(value)  # type: ignore[arg-type]
