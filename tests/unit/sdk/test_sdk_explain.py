"""explain_access and `brokerctl can`: the policy's decision as typed values and exit codes."""

import json
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration

from accessbroker import AccessDecision, BrokerClient
from accessbroker.cli.main import main
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import FakeBroker
from tests.unit.sdk.messages import INSTANCE

CAN = ["can", "--identity", "svc-ci", "--instance", INSTANCE, "--bucket", "ci-x"]


def _allowed() -> pb.AccessDecision:
    return pb.AccessDecision(
        allowed=True, reason="allowed by rule 2", rule=2, ttl=Duration(seconds=8 * 3600)
    )


def test_the_request_carries_every_field_and_the_decision_comes_back_typed(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("ExplainAccess", _allowed())

    decision = client.explain_access(
        "svc-ci", INSTANCE, "ci-x", "read_write", prefix="builds/", ttl=timedelta(hours=8)
    )

    assert decision == AccessDecision(True, "allowed by rule 2", 2, timedelta(hours=8))
    [sent] = fake.requests("ExplainAccess", pb.ExplainAccessRequest)
    assert (sent.identity, sent.instance_id, sent.bucket, sent.prefix) == (
        "svc-ci",
        INSTANCE,
        "ci-x",
        "builds/",
    )
    assert (sent.access, sent.ttl.seconds) == (pb.ACCESS_READ_WRITE, 8 * 3600)


def test_a_refusal_has_no_rule_and_no_ttl(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("ExplainAccess", pb.AccessDecision(allowed=False, reason="no rule matched"))

    decision = client.explain_access("svc-ci", INSTANCE, "ci-x", "read")

    assert decision == AccessDecision(False, "no rule matched", None, None)
    assert not fake.requests("ExplainAccess", pb.ExplainAccessRequest)[0].HasField("ttl")


def test_brokerctl_can_prints_the_decision_and_exits_0_when_allowed(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.answer("ExplainAccess", _allowed())

    code = main(["--address", address, *CAN, "--access", "upload", "--ttl", "8h", "--token", "t"])

    assert code == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "allowed:        yes",
        "reason:         allowed by rule 2",
        "rule:           2",
        "expires after:  8h",
        "approval:       not needed",
    ]
    assert fake.calls["ExplainAccess"][0].metadata["authorization"] == "Bearer t"


def test_brokerctl_can_exits_4_saying_why_when_refused(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = "bucket ci-x is denied by 'ci-*'"
    fake.answer("ExplainAccess", pb.AccessDecision(allowed=False, reason=reason))

    code = main(["--address", address, "-o", "json", *CAN, "--access", "upload"])

    assert code == 4
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "allowed": False,
        "reason": reason,
        "rule": None,
        "ttl": None,
        "approvers": [],
        "approvals_required": 0,
    }
    assert captured.err == f"brokerctl: svc-ci may not have upload on s3://ci-x/: {reason}\n"


def test_brokerctl_can_names_who_must_approve(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    decision = pb.AccessDecision(
        allowed=True,
        reason="allowed by rule 3 once approved by 2 of alice, sre-*",
        rule=3,
        approvers=["alice", "sre-*"],
        approvals_required=2,
    )
    fake.answer("ExplainAccess", decision)

    code = main(["--address", address, *CAN, "--access", "upload"])

    assert code == 0
    assert "approval:       2 of alice, sre-*" in capsys.readouterr().out.splitlines()
