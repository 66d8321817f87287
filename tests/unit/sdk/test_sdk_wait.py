"""wait() polls a grant until it reaches the wanted state, settles elsewhere, or time runs out."""

import pytest

import accessbroker.client
from accessbroker import BrokerClient, GrantState, errors
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import FakeBroker
from tests.unit.sdk.messages import GRANT_ID, grant_message
from tests.waiting import WAIT_SECONDS

PENDING = grant_message(state=pb.GRANT_STATE_PENDING)
ACTIVE = grant_message(state=pb.GRANT_STATE_ACTIVE)


class RoundTripClock:
    """Stands for the `time` module of the SDK's client: time passes in wait()'s sleeps and in
    each GetGrant round trip to the fake broker (which counts them), so how many looks fit in a
    timeout is arithmetic, not a matter of the machine's speed."""

    def __init__(self, fake: FakeBroker, round_trip: float) -> None:
        self._fake, self._round_trip = fake, round_trip
        self._slept = 0.0

    def monotonic(self) -> float:
        return self._slept + self._round_trip * len(self._fake.calls["GetGrant"])

    def sleep(self, seconds: float) -> None:
        self._slept += seconds


def test_wait_returns_the_grant_once_it_reaches_the_state(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("GetGrant", PENDING, PENDING, ACTIVE)

    grant = client.wait(GRANT_ID, timeout=WAIT_SECONDS, poll_interval=0.01)

    assert grant.state is GrantState.ACTIVE
    assert len(fake.calls["GetGrant"]) == 3
    assert {r.grant_id for r in fake.requests("GetGrant", pb.GetGrantRequest)} == {GRANT_ID}


def test_wait_takes_the_state_as_a_string(fake: FakeBroker, client: BrokerClient) -> None:
    revoking = grant_message(state=pb.GRANT_STATE_REVOKING)
    fake.answer("GetGrant", revoking, grant_message(state=pb.GRANT_STATE_REVOKED))

    assert client.wait(GRANT_ID, "revoked", poll_interval=0.01).state is GrantState.REVOKED


def test_wait_raises_failed_precondition_when_the_grant_settles_elsewhere(
    fake: FakeBroker, client: BrokerClient
) -> None:
    failed = grant_message(state=pb.GRANT_STATE_FAILED)
    failed.failure_reason = "the instance holds a foreign profile"
    fake.answer("GetGrant", PENDING, failed)

    with pytest.raises(errors.FailedPrecondition) as raised:
        client.wait(GRANT_ID, timeout=WAIT_SECONDS, poll_interval=0.01)

    message = str(raised.value)
    assert GRANT_ID in message
    assert "failed" in message
    assert "the instance holds a foreign profile" in message
    assert "active" in message


def test_wait_raises_deadline_exceeded_when_time_runs_out(
    fake: FakeBroker, client: BrokerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.answer("GetGrant", PENDING)
    monkeypatch.setattr(accessbroker.client, "time", RoundTripClock(fake, round_trip=6.0))

    with pytest.raises(errors.DeadlineExceeded, match="still pending after 20 s"):
        client.wait(GRANT_ID, timeout=20, poll_interval=1)

    # Looks begin at 0, 7 and 14 s and take 6 s each; the third ends at the deadline. Each had
    # at least 6 s left, so the real gRPC timeout of none of them is a sliver that load beats.
    assert len(fake.calls["GetGrant"]) == 3


def test_wait_passes_on_errors_of_the_lookup(fake: FakeBroker, client: BrokerClient) -> None:
    with pytest.raises(errors.BrokerError, match="no reply scripted"):
        client.wait(GRANT_ID, timeout=WAIT_SECONDS, poll_interval=0.01)


def test_waiting_for_revoked_goes_on_past_active(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("GetGrant", ACTIVE, ACTIVE, grant_message(state=pb.GRANT_STATE_REVOKED))

    grant = client.wait(GRANT_ID, "revoked", timeout=WAIT_SECONDS, poll_interval=0.01)

    assert grant.state is GrantState.REVOKED
    assert len(fake.calls["GetGrant"]) == 3
