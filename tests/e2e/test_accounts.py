"""Many accounts and regions from one broker (BROKER_ACCOUNTS_FILE), end to end.

The broker runs as an IAM user of the home account holding exactly deploy/iam's broker policy
and hub policy, and reaches each spoke by assuming the spoke role deploy/iam describes, whose
permissions the emulator enforces there. Access is checked as it matters: with the credentials
EC2 would hand the instance in its own account, the S3 call itself.
"""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf.duration_pb2 import Duration

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.sandbox import Emulator
from broker.sandbox.emulator import ACCOUNT_ID
from broker.sandbox.instance_view import ALLOWED
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_role_names, grant, role_name
from tests.e2e.reloading import hang_up
from tests.e2e.spokes import Spoke, hub_policy, launch_with_id
from tests.e2e.test_broker_policy import credentials_env, identity_holding
from tests.waiting import wait_for

HOME_REGION, OTHER_REGION = "us-east-1", "eu-west-1"


@pytest.fixture(scope="module")
def prod(emulator: Emulator) -> Spoke:
    return Spoke(emulator, "prod", (HOME_REGION, OTHER_REGION))


@pytest.fixture(scope="module")
def staging(emulator: Emulator) -> Spoke:
    return Spoke(emulator, "staging", (HOME_REGION,))


@pytest.fixture(scope="module")
def accounts_file(prod: Spoke, staging: Spoke, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two spokes, and one whose role was never rolled out (it cannot be reached)."""
    gone = str(uuid.uuid4().int)[:12]
    unreachable = {
        "id": gone,
        "name": "gone",
        "role_arn": f"arn:aws:iam::{gone}:role/accessbroker-spoke",
        "regions": [HOME_REGION],
    }
    content = {
        "home": {"id": ACCOUNT_ID, "name": "hub", "regions": [HOME_REGION]},
        "accounts": [prod.accounts_entry(), staging.accounts_entry(), unreachable],
    }
    path = tmp_path_factory.mktemp("accounts") / "accounts.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


@contextmanager
def hub_broker(
    emulator: Emulator, accounts_file: Path, database: Path, **env: str
) -> Iterator[BrokerProcess]:
    """A running broker of the home account, as deploy/iam has it, serving the accounts file;
    `env` overrides its settings."""
    settings = {
        "BROKER_ACCOUNTS_FILE": str(accounts_file),
        # An unreachable account answers HTTP 500 in the emulator: give up on it soon.
        "BROKER_AWS_SERVER_ERROR_BUDGET": "1",
        "BROKER_SWEEP_INTERVAL_SECONDS": "1",
        "BROKER_DRIFT_SWEEP_INTERVAL_SECONDS": "86400",
        **credentials_env(identity_holding(emulator, hub_policy())),
        **env,
    }
    process = BrokerProcess(emulator, f"sqlite:///{database}", **settings)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def broker(
    emulator: Emulator, accounts_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerProcess]:
    with hub_broker(emulator, accounts_file, tmp_path_factory.mktemp("hub") / "broker.db") as hub:
        yield hub


def refusal(call: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return call.code(), call.details() or ""


def test_a_grant_in_a_spoke_is_carried_out_there_and_nowhere_else(
    emulator: Emulator,
    stub: broker_pb2_grpc.AccessBrokerStub,
    prod: Spoke,
    staging: Spoke,
    buckets: tuple[str, str],
) -> None:
    instance_id = prod.run_instance()

    granted = grant(stub, instance_id, buckets[0], account="prod").grant

    assert granted.state == pb.GRANT_STATE_ACTIVE
    assert (granted.account, granted.region) == (prod.id, HOME_REGION)
    assert role_name(instance_id) in prod.role_names()
    assert role_name(instance_id) not in aws_role_names(emulator)
    assert role_name(instance_id) not in staging.role_names()
    assert prod.try_as_instance(instance_id, "PutObject", buckets[0], "up/a") == ALLOWED
    assert prod.try_as_instance(instance_id, "PutObject", buckets[1], "up/a") == "AccessDenied"
    described = stub.DescribeInstanceAccess(
        pb.DescribeInstanceAccessRequest(instance_id=instance_id, account=prod.id)
    )
    assert (described.account, described.region) == (prod.id, HOME_REGION)
    assert described.role_arn.startswith(f"arn:aws:iam::{prod.id}:role/")


def test_the_same_instance_id_in_two_accounts_stays_two_instances(
    monkeypatch: pytest.MonkeyPatch,
    stub: broker_pb2_grpc.AccessBrokerStub,
    prod: Spoke,
    staging: Spoke,
    buckets: tuple[str, str],
) -> None:
    shared_id = f"i-{uuid.uuid4().hex[:17]}"
    launch_with_id(monkeypatch, shared_id, prod, staging)

    in_prod = grant(stub, shared_id, buckets[0], account="prod").grant
    in_staging = grant(stub, shared_id, buckets[1], account="staging").grant

    assert in_prod.grant_id != in_staging.grant_id
    assert prod.try_as_instance(shared_id, "PutObject", buckets[0], "k") == ALLOWED
    assert prod.try_as_instance(shared_id, "PutObject", buckets[1], "k") == "AccessDenied"
    assert staging.try_as_instance(shared_id, "PutObject", buckets[1], "k") == ALLOWED
    assert staging.try_as_instance(shared_id, "PutObject", buckets[0], "k") == "AccessDenied"
    listed = stub.ListGrants(pb.ListGrantsRequest(instance_id=shared_id)).grants
    assert {(g.account, g.bucket) for g in listed} == {
        (prod.id, buckets[0]),
        (staging.id, buckets[1]),
    }
    only_prod = stub.ListGrants(pb.ListGrantsRequest(instance_id=shared_id, account="prod")).grants
    assert [g.grant_id for g in only_prod] == [in_prod.grant_id]
    trail = pb.ListAuditEventsRequest(instance_id=shared_id, account="staging", page_size=1000)
    staging_trail = stub.ListAuditEvents(trail).events
    assert staging_trail and {e.grant_id for e in staging_trail} <= {in_staging.grant_id, ""}
    assert all(json.loads(e.detail)["account"] == staging.id for e in staging_trail)
    watching = pb.WatchAuditEventsRequest(
        after_event_id=0, instance_id=shared_id, account="staging"
    )
    stream: Any = stub.WatchAuditEvents(watching, timeout=30)
    followed = [next(stream) for _ in staging_trail]
    stream.cancel()
    assert followed == list(staging_trail)

    stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=in_prod.grant_id), timeout=60)

    assert role_name(shared_id) not in prod.role_names()
    assert staging.try_as_instance(shared_id, "PutObject", buckets[1], "k") == ALLOWED


def test_a_spokes_second_region_is_its_own_place(
    stub: broker_pb2_grpc.AccessBrokerStub, prod: Spoke, buckets: tuple[str, str]
) -> None:
    instance_id = prod.run_instance(OTHER_REGION)

    with pytest.raises(grpc.RpcError) as elsewhere:
        grant(stub, instance_id, buckets[0], account="prod")
    granted = grant(stub, instance_id, buckets[0], account="prod", region=OTHER_REGION).grant

    assert refusal(elsewhere.value)[0] == grpc.StatusCode.NOT_FOUND
    assert (granted.state, granted.region) == (pb.GRANT_STATE_ACTIVE, OTHER_REGION)
    assert prod.try_as_instance(instance_id, "PutObject", buckets[0], "k", OTHER_REGION) == ALLOWED


@pytest.mark.parametrize(
    ("account", "region", "named"),
    [
        ("elsewhere", "", "account 'elsewhere' is not configured"),
        ("staging", OTHER_REGION, "region 'eu-west-1' is not configured"),
    ],
)
def test_places_not_configured_are_refused_naming_those_that_are(
    stub: broker_pb2_grpc.AccessBrokerStub, prod: Spoke, account: str, region: str, named: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        grant(stub, prod.run_instance(), "any-bucket", account=account, region=region)

    code, details = refusal(refused.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert named in details
    assert f"prod ({prod.id}): {HOME_REGION}, {OTHER_REGION}" in details


def test_an_unreachable_account_fails_only_its_own_requests(
    stub: broker_pb2_grpc.AccessBrokerStub, prod: Spoke, buckets: tuple[str, str]
) -> None:
    with pytest.raises(grpc.RpcError) as unreachable:
        grant(stub, "i-0123456789abcdef0", buckets[0], account="gone")
    instance_id = prod.run_instance()
    granted = grant(stub, instance_id, buckets[0], account="prod").grant

    code, details = refusal(unreachable.value)
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "account gone (" in details
    assert granted.state == pb.GRANT_STATE_ACTIVE


def test_expiry_ends_grants_in_each_account(
    stub: broker_pb2_grpc.AccessBrokerStub, staging: Spoke, buckets: tuple[str, str]
) -> None:
    instance_id = staging.run_instance()
    granted = grant(stub, instance_id, buckets[1], account="staging", ttl=Duration(seconds=2)).grant

    wait_for(
        lambda: stub.GetGrant(pb.GetGrantRequest(grant_id=granted.grant_id)).state,
        lambda state: state == pb.GRANT_STATE_EXPIRED,
        what="the staging grant to expire",
    )
    assert role_name(instance_id) not in staging.role_names()
    assert staging.try_as_instance(instance_id, "PutObject", buckets[1], "k") != ALLOWED


def test_drift_is_found_and_repaired_per_account(
    emulator: Emulator,
    accounts_file: Path,
    prod: Spoke,
    buckets: tuple[str, str],
    tmp_path: Path,
) -> None:
    # A broker whose sweep stays still: the module's, finishing a grant it saw pending, would
    # converge the instance again and put the deleted policy back before Reconcile looks.
    with hub_broker(
        emulator, accounts_file, tmp_path / "broker.db", BROKER_SWEEP_INTERVAL_SECONDS="86400"
    ) as still:
        instance_id = prod.run_instance()
        grant(still.stub, instance_id, buckets[0], account="prod")
        prod.client("iam").delete_role_policy(
            RoleName=role_name(instance_id), PolicyName="accessbroker-grants"
        )
        in_staging = still.stub.Reconcile(
            pb.ReconcileRequest(account="staging", dry_run=True)
        ).drifts
        repaired = still.stub.Reconcile(
            pb.ReconcileRequest(instance_id=instance_id, account="prod", dry_run=False)
        ).drifts

    assert instance_id not in {d.instance_id for d in in_staging}
    assert [(d.kind, d.account, d.repaired) for d in repaired] == [
        (pb.DRIFT_KIND_POLICY, prod.id, True)
    ]
    assert prod.try_as_instance(instance_id, "PutObject", buckets[0], "k") == ALLOWED


def test_quota_headroom_refuses_a_new_role_naming_the_account(
    emulator: Emulator,
    accounts_file: Path,
    prod: Spoke,
    buckets: tuple[str, str],
    tmp_path: Path,
) -> None:
    # Keeping 99.9% of the quota of 1,000 roles free leaves room for one role: prod has more.
    with hub_broker(
        emulator, accounts_file, tmp_path / "broker.db", BROKER_ROLE_QUOTA_HEADROOM="0.999"
    ) as strict:
        instance_id = prod.run_instance()
        with pytest.raises(grpc.RpcError) as refused:
            grant(strict.stub, instance_id, buckets[0], account="prod")

    code, details = refusal(refused.value)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"account prod ({prod.id}) is near its IAM quotas" in details
    assert role_name(instance_id) not in prod.role_names()


def test_the_accounts_file_is_read_again_on_sighup_and_an_unusable_one_changes_nothing(
    emulator: Emulator, prod: Spoke, staging: Spoke, buckets: tuple[str, str], tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(yaml.safe_dump({"accounts": [staging.accounts_entry()]}))
    unbounded = Spoke(emulator, "unbounded", (HOME_REGION,), bounded=False)
    with hub_broker(emulator, accounts, tmp_path / "broker.db") as broker:
        instance_id = prod.run_instance()
        with pytest.raises(grpc.RpcError) as before:
            grant(broker.stub, instance_id, buckets[0], account="prod")
        accounts.write_text(yaml.safe_dump({"accounts": [prod.accounts_entry()]}))
        hang_up(broker)
        granted = wait_for(
            lambda: _granted_or_refused(broker, instance_id, buckets[0]),
            lambda outcome: outcome is not None,
            what="the reloaded accounts file to name prod",
        )
        for unusable, why in (
            ("accounts: [{id: 1}]", "accounts[0]"),
            # prod holds a live grant now: dropping it would strand its access in AWS.
            (yaml.safe_dump({"accounts": [staging.accounts_entry()]}), "grants are live"),
            # A new account is served only once its boundary is there.
            (
                yaml.safe_dump({"accounts": [prod.accounts_entry(), unbounded.accounts_entry()]}),
                f"arn:aws:iam::{unbounded.id}:policy/accessbroker-boundary: no such policy",
            ),
        ):
            accounts.write_text(unusable)
            hang_up(broker)
            _wait_for_refusal(broker, why)
        still = grant(broker.stub, instance_id, buckets[1], account="prod").grant

    assert refusal(before.value)[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert granted is not None and granted.state == pb.GRANT_STATE_ACTIVE
    assert still.state == pb.GRANT_STATE_ACTIVE


def _wait_for_refusal(broker: BrokerProcess, why: str) -> None:
    """Returns once the broker has logged that it kept its files in force, saying `why`."""

    def refused(lines: list[str]) -> bool:
        kept = "not reloaded, those in force stay"
        return any(kept in line and why in line for line in lines)

    wait_for(lambda: list(broker.output), refused, what=f"the accounts file to be refused ({why})")


def _granted_or_refused(broker: BrokerProcess, instance_id: str, bucket: str) -> pb.Grant | None:
    """The grant, once the broker knows the account; None while it still refuses it."""
    try:
        return grant(broker.stub, instance_id, bucket, account="prod").grant
    except grpc.RpcError as refused:
        if refused.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        return None


def test_each_reachable_accounts_iam_usage_is_a_metric(
    emulator: Emulator, accounts_file: Path, prod: Spoke, tmp_path: Path
) -> None:
    roles = len(prod.role_names())
    with hub_broker(emulator, accounts_file, tmp_path / "broker.db") as broker:
        broker.wait_for_chore("quotas")
        usage = {
            (s.name, s.labels["account"]): s.value for s in broker.samples("accessbroker_iam_")
        }

    assert usage[("accessbroker_iam_roles", "prod")] == roles
    assert usage[("accessbroker_iam_roles_quota", "prod")] == 1000
    assert ("accessbroker_iam_instance_profiles", "staging") in usage
    assert ("accessbroker_iam_roles", "hub") in usage
    # The account that cannot be reached has no figures, and did not stop the others'.
    assert ("accessbroker_iam_roles", "gone") not in usage
