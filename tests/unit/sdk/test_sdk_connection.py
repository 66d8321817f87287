"""Where the client connects, what it sends along, and the audit stream it follows."""

import itertools
from pathlib import Path

import grpc
import pytest

from accessbroker import BrokerClient, errors, tls_from_environment, tls_from_files
from accessbroker.client import DEFAULT_ADDRESS
from accessbroker.v1 import broker_pb2 as pb
from tests.credentials import CertificateAuthority
from tests.unit.sdk.fake_broker import Abort, FakeBroker, Stream
from tests.unit.sdk.messages import GRANT_ID, event_message, grant_message


def test_the_token_is_sent_as_bearer_authorization(fake: FakeBroker, address: str) -> None:
    fake.answer("GetGrant", grant_message())
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message()))

    with BrokerClient(address, token="s3cr3t") as client:
        client.get(GRANT_ID)
        client.grant("i-0123456789abcdef0", "reports", "upload")

    calls = fake.calls["GetGrant"] + fake.calls["GrantAccess"]
    assert [call.metadata.get("authorization") for call in calls] == ["Bearer s3cr3t"] * 2


def test_without_a_token_no_authorization_is_sent(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("GetGrant", grant_message())

    client.get(GRANT_ID)

    assert "authorization" not in fake.calls["GetGrant"][0].metadata


def test_broker_address_is_honoured(
    fake: FakeBroker, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_ADDRESS", address)
    fake.answer("GetGrant", grant_message())

    with BrokerClient(timeout=5) as client:
        assert client.address == address
        assert client.get(GRANT_ID).grant_id == GRANT_ID

    assert len(fake.calls["GetGrant"]) == 1


def test_an_explicit_address_wins_over_broker_address(
    fake: FakeBroker, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_ADDRESS", "127.0.0.1:1")
    fake.answer("GetGrant", grant_message())

    with BrokerClient(address, timeout=5) as client:
        assert client.get(GRANT_ID).grant_id == GRANT_ID


def test_the_default_address_is_the_local_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BROKER_ADDRESS", raising=False)

    with BrokerClient() as client:
        assert client.address == DEFAULT_ADDRESS == "127.0.0.1:50051"


def test_watch_resumes_after_the_last_event_when_the_stream_drops(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer(
        "WatchAuditEvents",
        Stream([event_message(5), event_message(6)], then=Abort(grpc.StatusCode.UNAVAILABLE)),
        Stream([event_message(7)]),
    )

    events = client.watch(after=4, instance_id="i-0123456789abcdef0")
    seen = [e.event_id for e in itertools.islice(events, 3)]

    assert seen == [5, 6, 7]
    requests = fake.requests("WatchAuditEvents", pb.WatchAuditEventsRequest)
    assert [r.after_event_id for r in requests[:2]] == [4, 6]
    assert {r.instance_id for r in requests} == {"i-0123456789abcdef0"}


@pytest.mark.parametrize(("after", "has_cursor"), [(None, False), (0, True)])
def test_watch_sends_no_cursor_for_new_events_only_and_zero_for_everything(
    fake: FakeBroker, client: BrokerClient, after: int | None, has_cursor: bool
) -> None:
    fake.answer("WatchAuditEvents", Stream([event_message(1)]))

    events = client.watch(after=after)
    assert next(events).event_id == 1

    request = fake.requests("WatchAuditEvents", pb.WatchAuditEventsRequest)[0]
    assert request.HasField("after_event_id") is has_cursor


def test_watch_gives_up_after_its_reconnect_attempts(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer(
        "WatchAuditEvents",
        *[Stream([], then=Abort(grpc.StatusCode.UNAVAILABLE)) for _ in range(3)],
    )

    with pytest.raises(errors.Unavailable):
        list(client.watch(after=0, reconnect_attempts=2))

    assert len(fake.requests("WatchAuditEvents", pb.WatchAuditEventsRequest)) == 3


def test_watch_resumes_where_the_server_said_it_started_when_no_event_came(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer(
        "WatchAuditEvents",
        Stream([], then=Abort(grpc.StatusCode.UNAVAILABLE), start=41),
        Stream([event_message(42)]),
    )

    assert next(client.watch()).event_id == 42

    requests = fake.requests("WatchAuditEvents", pb.WatchAuditEventsRequest)
    assert not requests[0].HasField("after_event_id")
    assert requests[1].after_event_id == 41


def test_tls_comes_from_files_or_the_environment_and_half_a_pair_is_refused(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.pem)
    cert, key = ca.issue("ops").write(tmp_path, "client")

    assert tls_from_environment({}) is None
    assert isinstance(
        tls_from_environment({"BROKER_TLS_CA": str(ca_file)}), grpc.ChannelCredentials
    )
    assert isinstance(tls_from_files(ca_file, cert, key), grpc.ChannelCredentials)
    with pytest.raises(ValueError, match="a client certificate needs its key"):
        tls_from_environment({"BROKER_TLS_CERT": str(cert)})
    with pytest.raises(ValueError, match=f"cannot read {tmp_path / 'absent.crt'}"):
        tls_from_files(tmp_path / "absent.crt", None, None)
