"""BrokerClient.extend and `brokerctl extend`, against a scripted broker."""

from datetime import timedelta

import grpc
import pytest

from accessbroker import BrokerClient
from accessbroker.cli.main import main
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import Abort, FakeBroker
from tests.unit.sdk.messages import EXPIRES, GRANT_ID, grant_message

UNAVAILABLE = Abort(grpc.StatusCode.UNAVAILABLE, "the broker is restarting")


def test_extend_sends_the_ttl_and_reason_and_returns_the_grant(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("ExtendGrant", grant_message())

    extended = client.extend(GRANT_ID, timedelta(hours=8), reason="night shift")

    assert (extended.grant_id, extended.expires_at) == (GRANT_ID, EXPIRES)
    [sent] = fake.requests("ExtendGrant", pb.ExtendGrantRequest)
    assert (sent.grant_id, sent.ttl.ToTimedelta(), sent.reason) == (
        GRANT_ID,
        timedelta(hours=8),
        "night shift",
    )


def test_extend_takes_seconds_and_refuses_a_ttl_that_is_not_positive(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("ExtendGrant", grant_message())

    client.extend(GRANT_ID, 90)

    assert fake.requests("ExtendGrant", pb.ExtendGrantRequest)[0].ttl.seconds == 90
    with pytest.raises(ValueError, match="ttl must be positive"):
        client.extend(GRANT_ID, 0)


def test_extend_is_retried_when_the_broker_is_unavailable(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("ExtendGrant", UNAVAILABLE, grant_message())

    assert client.extend(GRANT_ID, 60).grant_id == GRANT_ID
    assert len(fake.requests("ExtendGrant", pb.ExtendGrantRequest)) == 2


def test_brokerctl_extend_prints_the_extended_grant(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.answer("ExtendGrant", grant_message())

    code = main(
        ["--address", address, "-o", "json", "extend", GRANT_ID, "--ttl", "8h", "--reason", "r"]
    )

    assert code == 0
    assert f'"grant_id": "{GRANT_ID}"' in capsys.readouterr().out
    [sent] = fake.requests("ExtendGrant", pb.ExtendGrantRequest)
    assert (sent.ttl.ToTimedelta(), sent.reason) == (timedelta(hours=8), "r")


@pytest.mark.parametrize("argv", [["extend", GRANT_ID], ["extend", GRANT_ID, "--ttl", "8"]])
def test_brokerctl_extend_needs_a_ttl_it_can_read(
    fake: FakeBroker, address: str, argv: list[str]
) -> None:
    try:
        code = main(["--address", address, *argv])
    except SystemExit as exited:  # argparse: a required option is missing
        code = exited.code  # type: ignore[assignment]
    assert code == 2
    assert fake.requests("ExtendGrant", pb.ExtendGrantRequest) == []


def test_brokerctl_grant_says_when_a_broader_grant_covers_it(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message(), covered_by=GRANT_ID))
    argv = ["grant", "--instance", "i-0123456789abcdef0", "--bucket", "reports", "--access", "read"]

    assert main(["--address", address, *argv]) == 0
    assert f"Already covered by the broader grant {GRANT_ID}" in capsys.readouterr().out


def test_the_sdk_reports_covered_by(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message(), covered_by=GRANT_ID))

    assert client.grant("i-0123456789abcdef0", "reports", "read").covered_by == GRANT_ID
