"""approve, deny and the requests awaiting the caller's approval, in the SDK and brokerctl."""

from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration

from accessbroker import Approval, BrokerClient, GrantState
from accessbroker.cli.main import main
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import FakeBroker
from tests.unit.sdk.messages import CREATED, GRANT_ID, grant_message, stamp


def awaiting() -> pb.Grant:
    message = grant_message(state=pb.GRANT_STATE_AWAITING_APPROVAL)
    message.approvers.extend(["alice", "sre-*"])
    message.approvals_required = 2
    message.approvals.add(
        approver="alice", time=stamp(CREATED), reason="ok", ttl=Duration(seconds=3600)
    )
    return message


def test_approve_sends_the_reason_and_ttl_and_reads_the_approvals(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("ApproveGrant", pb.ApproveGrantResponse(grant=awaiting(), notice="counted once"))

    result = client.approve(GRANT_ID, reason="ok", ttl=timedelta(hours=1))

    [sent] = fake.requests("ApproveGrant", pb.ApproveGrantRequest)
    assert (sent.grant_id, sent.reason, sent.ttl.seconds) == (GRANT_ID, "ok", 3600)
    grant = result.grant
    assert grant.state is GrantState.AWAITING_APPROVAL and result.notice == "counted once"
    assert (grant.approvers, grant.approvals_required) == (("alice", "sre-*"), 2)
    assert grant.approvals == (Approval("alice", CREATED, "ok", timedelta(hours=1)),)


def test_deny_sends_the_reason(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("DenyGrant", grant_message(state=pb.GRANT_STATE_DENIED))

    denied = client.deny(GRANT_ID, reason="not this week")

    assert denied.state is GrantState.DENIED and denied.state.is_final
    [sent] = fake.requests("DenyGrant", pb.DenyGrantRequest)
    assert (sent.grant_id, sent.reason) == (GRANT_ID, "not this week")


def test_list_asks_for_the_requests_awaiting_the_callers_approval(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("ListGrants", pb.ListGrantsResponse(grants=[awaiting()]))

    listed = list(client.list_grants(awaiting_my_approval=True))

    assert [g.grant_id for g in listed] == [GRANT_ID]
    assert fake.requests("ListGrants", pb.ListGrantsRequest)[0].awaiting_my_approval


def test_brokerctl_grant_says_who_must_approve(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=awaiting()))

    code = main(
        ["--address", address, "grant", "--instance", "i-0123456789abcdef0", "--bucket",
         "reports", "--access", "read"]
    )  # fmt: skip

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Awaiting approval by 2 of alice, sre-*; nothing changes in AWS")
    assert f"An approver runs: brokerctl approve {GRANT_ID}" in out
    assert "approved by:       alice" in out


def test_brokerctl_approve_deny_and_mine_to_approve(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.answer("ApproveGrant", pb.ApproveGrantResponse(grant=awaiting()))
    fake.answer("DenyGrant", grant_message(state=pb.GRANT_STATE_DENIED))
    fake.answer("ListGrants", pb.ListGrantsResponse(grants=[awaiting()]))

    approved = main(["--address", address, "approve", GRANT_ID, "--ttl", "1h", "--reason", "ok"])
    denied = main(["--address", address, "deny", GRANT_ID, "--reason", "no"])
    listed = main(["--address", address, "list", "--mine-to-approve"])

    assert (approved, denied, listed) == (0, 0, 0)
    assert fake.requests("ApproveGrant", pb.ApproveGrantRequest)[0].ttl.seconds == 3600
    assert fake.requests("DenyGrant", pb.DenyGrantRequest)[0].reason == "no"
    assert fake.requests("ListGrants", pb.ListGrantsRequest)[0].awaiting_my_approval
    assert "awaiting_approval" in capsys.readouterr().out


def test_brokerctl_dry_run_says_approval_would_be_needed(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    would = awaiting()
    would.grant_id = ""  # a dry run's grant is not recorded
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=would, policy_document="{}"))

    code = main(
        ["--address", address, "grant", "--instance", "i-0123456789abcdef0", "--bucket",
         "reports", "--access", "read", "--dry-run"]
    )  # fmt: skip

    assert code == 0
    assert "It needs approval by 2 of alice, sre-* before AWS changes." in capsys.readouterr().out
