"""Where an instance lives, through the SDK and brokerctl: `account` and `region` go out on every
request that names an instance or filters by place, and come back on grants and drift."""

import json
from pathlib import Path
from typing import Any

import pytest

from accessbroker import BrokerClient
from accessbroker.cli.main import main
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import FakeBroker
from tests.unit.sdk.messages import INSTANCE, grant_message

PROD = "222222222222"


def placed_grant() -> pb.Grant:
    message = grant_message()
    message.account, message.region = PROD, "eu-west-1"
    return message


def test_the_sdk_names_the_place_and_reads_it_back(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=placed_grant()))
    fake.answer("ListGrants", pb.ListGrantsResponse(grants=[placed_grant()]))
    fake.answer("DescribeInstanceAccess", pb.InstanceAccess(account=PROD, region="eu-west-1"))
    drift = pb.Drift(instance_id=INSTANCE, kind=pb.DRIFT_KIND_POLICY, account=PROD, region="x")
    fake.answer("Reconcile", pb.ReconcileResponse(drifts=[drift]))
    fake.answer("ExplainAccess", pb.AccessDecision(allowed=True))

    granted = client.grant(INSTANCE, "b", "read", account="prod", region="eu-west-1").grant
    listed = list(client.list_grants(account="prod"))
    described = client.describe(INSTANCE, account="prod", region="eu-west-1")
    [found] = client.reconcile(account="prod", region="x")
    client.explain_access("svc", INSTANCE, "b", "read", account="prod", region="eu-west-1")

    assert (granted.account, granted.region) == (PROD, "eu-west-1")
    assert [(g.account, g.region) for g in listed] == [(PROD, "eu-west-1")]
    assert (described.account, described.region) == (PROD, "eu-west-1")
    assert (found.account, found.region) == (PROD, "x")
    granting = fake.requests("GrantAccess", pb.GrantAccessRequest)[0]
    describing = fake.requests("DescribeInstanceAccess", pb.DescribeInstanceAccessRequest)[0]
    explaining = fake.requests("ExplainAccess", pb.ExplainAccessRequest)[0]
    assert (granting.account, granting.region) == ("prod", "eu-west-1")
    assert (describing.account, describing.region) == ("prod", "eu-west-1")
    assert (explaining.account, explaining.region) == ("prod", "eu-west-1")
    listing = fake.requests("ListGrants", pb.ListGrantsRequest)[0]
    assert (listing.account, listing.region) == ("prod", "")
    reconciling = fake.requests("Reconcile", pb.ReconcileRequest)[0]
    assert (reconciling.account, reconciling.region) == ("prod", "x")


def test_without_a_place_requests_name_none(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message()))

    granted = client.grant(INSTANCE, "b", "read").grant

    [sent] = fake.requests("GrantAccess", pb.GrantAccessRequest)
    assert (sent.account, sent.region) == ("", "")
    assert granted.grant_id == grant_message().grant_id


@pytest.mark.parametrize(
    "case",
    [
        (["grant", "--instance", INSTANCE, "--bucket", "b", "--access", "read"], "GrantAccess",
         pb.GrantAccessRequest),
        (["list"], "ListGrants", pb.ListGrantsRequest),
        (["describe", INSTANCE], "DescribeInstanceAccess", pb.DescribeInstanceAccessRequest),
        (["drift"], "Reconcile", pb.ReconcileRequest),
    ],
)  # fmt: skip
def test_brokerctl_takes_the_place_as_options_or_from_the_environment(
    fake: FakeBroker,
    address: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[list[str], str, type[Any]],
) -> None:
    argv, method, kind = case
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=placed_grant()))
    fake.answer("ListGrants", pb.ListGrantsResponse())
    fake.answer("DescribeInstanceAccess", pb.InstanceAccess(instance_id=INSTANCE))
    fake.answer("Reconcile", pb.ReconcileResponse())
    monkeypatch.setenv("BROKER_REGION", "eu-west-1")

    code = main(["--address", address, "-o", "json", *argv, "--account", "prod"])

    assert code == 0, capsys.readouterr().err
    [sent] = fake.requests(method, kind)
    assert (sent.account, sent.region) == ("prod", "eu-west-1")


def test_brokerctl_shows_where_the_instance_lives(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=placed_grant()))
    grant = ["grant", "--instance", INSTANCE, "--bucket", "b", "--access", "read"]

    assert main(["--address", address, *grant, "--account", "prod"]) == 0
    shown = capsys.readouterr().out
    assert main(["--address", address, "-o", "json", *grant]) == 0
    as_json = json.loads(capsys.readouterr().out)

    assert f"eu-west-1 in account {PROD}" in shown
    assert (as_json["grant"]["account"], as_json["grant"]["region"]) == (PROD, "eu-west-1")


@pytest.mark.parametrize(
    ("place", "listed_in"),
    [("", ("home", "")), ("account: prod\nregion: eu-west-1\n", ("prod", "eu-west-1"))],
)
def test_plan_reads_and_grants_where_the_request_file_says_the_instances_live(
    fake: FakeBroker, address: str, tmp_path: Path, place: str, listed_in: tuple[str, str]
) -> None:
    request_file = tmp_path / "access.yaml"
    request_file.write_text(
        f"{place}instances:\n  {INSTANCE}:\n    - {{bucket: b, access: read}}\n"
    )
    fake.answer("ListGrants", pb.ListGrantsResponse())
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message()))

    assert main(["--address", address, "plan", "-f", str(request_file)]) == 0

    [listing] = fake.requests("ListGrants", pb.ListGrantsRequest)
    [preview] = fake.requests("GrantAccess", pb.GrantAccessRequest)
    assert (listing.instance_id, listing.account, listing.region) == (INSTANCE, *listed_in)
    expected = ("", "") if not place else listed_in
    assert (preview.account, preview.region, preview.dry_run) == (*expected, True)
