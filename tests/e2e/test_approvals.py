"""Approvals in the real server, with token-authenticated callers: a request that needs two
approvals changes nothing in AWS until the second distinct one, after which the instance can
really upload; self-approval is refused; a denial and a lapsed request are final."""

from collections.abc import Iterator

import pytest

from accessbroker import BrokerClient, GrantState, errors
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.credentials import write_tokens_file
from tests.e2e.broker_process import BrokerProcess
from tests.waiting import wait_for

TOKENS = {
    "team-data-etl": "etl-token-1a2b3c",
    "alice": "alice-token-4d5e6f",
    "bob": "bob-token-7a8b9c",
    "sre-oncall": "sre-token-0d1e2f",
    "platform-admin": "admin-token-3a4b5c",
}
# Uploads need two of alice, bob and the SREs; reads one SRE, and lapse after 3 seconds.
POLICY = """\
admins: [platform-admin]
rules:
  - identities: ["team-data-*", alice]
    buckets: ["{data}"]
    access: [upload]
    max_ttl: 8h
    approval:
      approvers: [alice, bob, "sre-*"]
      required: 2
  - identities: ["team-data-*"]
    buckets: ["{data}"]
    access: [read]
    approval:
      approvers: ["sre-*"]
      timeout: 3s
"""


@pytest.fixture(scope="module")
def broker(
    emulator: Emulator, buckets: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerProcess]:
    directory = tmp_path_factory.mktemp("approvals")
    policy = directory / "policy.yaml"
    policy.write_text(POLICY.format(data=buckets[0]))
    process = BrokerProcess(
        emulator,
        f"sqlite:///{directory / 'broker.db'}",
        BROKER_AUTH_MODE="token",
        BROKER_TOKENS_FILE=str(write_tokens_file(directory / "tokens.yaml", TOKENS)),
        BROKER_POLICY_FILE=str(policy),
        # Lapsed requests are found within a second.
        BROKER_SWEEP_INTERVAL_SECONDS="1",
    )
    process.start()
    yield process
    process.stop()


def client(broker: BrokerProcess, identity: str) -> BrokerClient:
    return BrokerClient(broker.address, token=TOKENS[identity], timeout=60)


def test_two_distinct_approvals_grant_and_the_instance_can_then_upload(
    broker: BrokerProcess, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    data = buckets[0]
    with (
        client(broker, "team-data-etl") as requester,
        client(broker, "alice") as alice,
        client(broker, "sre-oncall") as sre,
    ):
        waiting = requester.grant(instance_id, data, "upload", prefix="q4/", ttl=3600).grant
        with pytest.raises(errors.PermissionDenied, match="never approves or denies their own"):
            requester.approve(waiting.grant_id)
        first = alice.approve(waiting.grant_id, reason="quarter close")
        again = alice.approve(waiting.grant_id)
        before_second = emulator.try_as_instance(instance_id, "PutObject", data, "q4/report")
        granted = sre.approve(waiting.grant_id).grant

    assert waiting.state is GrantState.AWAITING_APPROVAL
    assert (waiting.approvers, waiting.approvals_required) == (("alice", "bob", "sre-*"), 2)
    assert first.grant.state is GrantState.AWAITING_APPROVAL
    assert again.notice.startswith("alice already approved this request")
    assert before_second == NO_CREDENTIALS  # AWS saw nothing of it: no role, no profile
    assert granted.state is GrantState.ACTIVE
    assert [a.approver for a in granted.approvals] == ["alice", "sre-oncall"]
    assert emulator.try_as_instance(instance_id, "PutObject", data, "q4/report") == ALLOWED
    assert emulator.try_as_instance(instance_id, "PutObject", data, "other/report") != ALLOWED
    with client(broker, "platform-admin") as admin:
        trail = [(e.action, e.actor) for e in admin.audit(grant_id=waiting.grant_id)]
    assert [t for t in trail if t[0].startswith("grant.")] == [
        ("grant.approval_requested", "team-data-etl"),
        ("grant.decision_denied", "team-data-etl"),  # the self-approval, refused
        ("grant.approved", "alice"),
        ("grant.approved", "sre-oncall"),
        ("grant.active", "sre-oncall"),
    ]


def test_approvers_see_what_waits_for_them_and_one_denial_ends_it(
    broker: BrokerProcess, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    with (
        client(broker, "team-data-etl") as requester,
        client(broker, "bob") as bob,
        client(broker, "alice") as alice,
    ):
        waiting = requester.grant(instance_id, buckets[0], "upload", prefix="x/").grant
        for_bob = [g.grant_id for g in bob.list_grants(awaiting_my_approval=True)]
        denied = bob.deny(waiting.grant_id, reason="use the staging bucket")
        with pytest.raises(errors.FailedPrecondition):
            alice.approve(waiting.grant_id)
        seen = requester.get(waiting.grant_id)

    assert waiting.grant_id in for_bob
    assert denied.state is GrantState.DENIED
    assert seen.failure_reason == "denied by bob: use the staging bucket"
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "x/a") == NO_CREDENTIALS


def test_an_unanswered_request_lapses(
    broker: BrokerProcess, instance_id: str, buckets: tuple[str, str]
) -> None:
    with client(broker, "team-data-etl") as requester, client(broker, "sre-oncall") as sre:
        waiting = requester.grant(instance_id, buckets[0], "read").grant
        lapsed = wait_for(
            lambda: requester.get(waiting.grant_id),
            lambda grant: grant.state.is_final,
            what="the request to lapse",
        )
        with pytest.raises(errors.FailedPrecondition):
            sre.approve(waiting.grant_id)

    assert (lapsed.state, lapsed.failure_reason) == (GrantState.EXPIRED, "not approved in time")


def test_a_requester_withdraws_a_waiting_request(
    broker: BrokerProcess, instance_id: str, buckets: tuple[str, str]
) -> None:
    with client(broker, "team-data-etl") as requester, client(broker, "alice") as alice:
        waiting = requester.grant(instance_id, buckets[0], "upload", prefix="w/").grant
        withdrawn = requester.revoke(waiting.grant_id, reason="not needed after all")
        with pytest.raises(errors.FailedPrecondition):
            alice.approve(waiting.grant_id)

    assert withdrawn.state is GrantState.REVOKED
