"""BrokerClient.reconcile and `brokerctl drift`, against a scripted broker."""

import json

import grpc
import pytest

from accessbroker import BrokerClient, Drift, DriftKind
from accessbroker.cli.main import main
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import Abort, FakeBroker

INSTANCE = "i-0123456789abcdef0"
POLICY_JSON = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "S3Read" * 20}]})
FINDINGS = pb.ReconcileResponse(
    drifts=[
        pb.Drift(
            instance_id=INSTANCE,
            kind=pb.DRIFT_KIND_EXTRA_POLICY,
            expected="no policy besides inline policy accessbroker-grants",
            actual="inline policy backdoor",
            repaired=True,
        ),
        pb.Drift(
            instance_id=INSTANCE,
            kind=pb.DRIFT_KIND_POLICY,
            expected=POLICY_JSON,
            actual="missing",
            repaired=False,
            account="222222222222",
            region="eu-west-1",
        ),
    ]
)


def test_reconcile_is_a_dry_run_unless_asked_and_returns_typed_drift(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("Reconcile", FINDINGS)

    found = client.reconcile(INSTANCE)
    client.reconcile(dry_run=False)

    assert found[0] == Drift(
        INSTANCE,
        DriftKind.EXTRA_POLICY,
        "no policy besides inline policy accessbroker-grants",
        "inline policy backdoor",
        repaired=True,
    )
    assert found[1].kind is DriftKind.POLICY and not found[1].repaired
    sent = fake.requests("Reconcile", pb.ReconcileRequest)
    assert [(r.instance_id, r.dry_run) for r in sent] == [(INSTANCE, True), ("", False)]


def test_an_unknown_drift_kind_asks_for_an_upgrade(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("Reconcile", pb.ReconcileResponse(drifts=[pb.Drift(kind=99)]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"drift kind 99.*upgrade accessbroker-client"):
        client.reconcile()


def test_reconcile_is_retried_when_the_broker_is_unavailable(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("Reconcile", Abort(grpc.StatusCode.UNAVAILABLE, "restarting"), FINDINGS)
    assert len(client.reconcile()) == 2


def test_brokerctl_drift_shows_a_table_with_long_documents_clipped(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.answer("Reconcile", FINDINGS)

    code = main(["--address", address, "drift", "--instance", INSTANCE, "--repair"])

    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["INSTANCE", "KIND", "EXPECTED", "ACTUAL", "REPAIRED"]
    assert "extra_policy" in lines[1] and lines[1].endswith("yes")
    assert "policy" in lines[2] and lines[2].endswith("no") and "…" in lines[2]
    assert POLICY_JSON not in out
    [sent] = fake.requests("Reconcile", pb.ReconcileRequest)
    assert (sent.instance_id, sent.dry_run) == (INSTANCE, False)


def test_brokerctl_drift_without_repair_says_nothing_changed(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.answer("Reconcile", FINDINGS, pb.ReconcileResponse())

    main(["--address", address, "drift"])
    main(["--address", address, "drift"])

    out = capsys.readouterr().out
    assert "--repair lets the broker repair it" in out and "No drift." in out
    assert all(r.dry_run for r in fake.requests("Reconcile", pb.ReconcileRequest))


def test_brokerctl_drift_json_has_every_field_in_full(
    fake: FakeBroker, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.answer("Reconcile", FINDINGS)

    main(["--address", address, "-o", "json", "drift"])

    document = json.loads(capsys.readouterr().out)
    assert document["repair"] is False
    assert document["drifts"][1] == {
        "instance_id": INSTANCE,
        "kind": "policy",
        "expected": POLICY_JSON,
        "actual": "missing",
        "repaired": False,
        "account": "222222222222",
        "region": "eu-west-1",
    }
