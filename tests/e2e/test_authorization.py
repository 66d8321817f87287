"""The access policy in the real server process: who may grant, revoke and explain; reloads."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from accessbroker import BrokerClient, GrantState, errors
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.credentials import write_tokens_file
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.reloading import hang_up
from tests.e2e.test_cli import brokerctl
from tests.waiting import wait_until

TOKENS = {"svc-ci": "ci-token-3c2b1a", "svc-web": "web-token-6f5e4d", "platform-admin": "adm-9z8y"}
POLICY = """\
admins: [platform-admin]
deny_buckets: ["{denied}"]
rules:
  - identities: [svc-ci]
    buckets: ["{data}"]
    access: [upload, read]
    prefixes: ["builds/*"]
    max_ttl: 8h
"""
# What the reload adds: svc-web may list the same bucket.
WEB_RULE = """\
  - identities: ["svc-w*"]
    buckets: ["{data}"]
    access: [list]
"""


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory, buckets: tuple[str, str]) -> Path:
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    data, denied = buckets
    path.write_text(POLICY.format(data=data, denied=denied))
    return path


@pytest.fixture(scope="module")
def secured(
    emulator: Emulator, policy_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerProcess]:
    directory = tmp_path_factory.mktemp("secured")
    process = BrokerProcess(
        emulator,
        f"sqlite:///{directory / 'broker.db'}",
        BROKER_AUTH_MODE="token",
        BROKER_TOKENS_FILE=str(write_tokens_file(directory / "tokens.yaml", TOKENS)),
        BROKER_POLICY_FILE=str(policy_file),
    )
    process.start()
    yield process
    process.stop()


def client(broker: BrokerProcess, identity: str) -> BrokerClient:
    return BrokerClient(broker.address, token=TOKENS[identity], timeout=60)


def test_one_identity_may_the_other_may_not_and_the_refusal_is_audited(
    secured: BrokerProcess, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    data, _ = buckets
    with client(secured, "svc-ci") as ci, client(secured, "svc-web") as web:
        granted = ci.grant(instance_id, data, "upload", prefix="builds/7/").grant
        with pytest.raises(errors.PermissionDenied) as refused:
            web.grant(instance_id, data, "upload", prefix="builds/7/")
    with client(secured, "platform-admin") as admin:
        rejected = [e for e in admin.audit(instance_id=instance_id) if e.outcome == "denied"]

    assert granted.state is GrantState.ACTIVE
    assert granted.expires_at is not None  # the rule's max_ttl, as none was asked for
    assert emulator.try_as_instance(instance_id, "PutObject", data, "builds/7/a") == ALLOWED
    assert "no rule matched: no rule is for identity svc-web" in str(refused.value)
    assert [(e.action, e.actor) for e in rejected] == [("grant.rejected", "svc-web")]


def test_only_the_requester_or_an_admin_revokes_and_admins_face_denied_buckets(
    secured: BrokerProcess, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    data, denied = buckets
    key = "builds/report.txt"
    # The object exists, so the instance's read is ALLOWED while granted, not NoSuchKey.
    emulator.client("s3").put_object(Bucket=data, Key=key, Body=b"x")
    with client(secured, "svc-ci") as ci, client(secured, "svc-web") as web:
        granted = ci.grant(instance_id, data, "read", prefix="builds/").grant
        with pytest.raises(errors.PermissionDenied, match="requested by another caller"):
            web.revoke(granted.grant_id)
        assert [g.grant_id for g in web.list_grants(instance_id=instance_id)] == []
        # The refusal changed nothing: the grant is as it was, and so is the instance's access.
        after_refusal = ci.get(granted.grant_id)
        access_after_refusal = emulator.try_as_instance(instance_id, "GetObject", data, key)
    with client(secured, "platform-admin") as admin:
        revoked = admin.revoke(granted.grant_id, reason="by an admin")
        with pytest.raises(errors.PermissionDenied, match=f"bucket {denied} is denied"):
            admin.grant(instance_id, denied, "read")

    assert after_refusal == granted
    assert after_refusal.state is GrantState.ACTIVE
    assert access_after_refusal == ALLOWED
    assert revoked.state is GrantState.REVOKED
    # The admin's revoke was the instance's last grant: its role is gone with it.
    assert emulator.try_as_instance(instance_id, "GetObject", data, key) == NO_CREDENTIALS


def test_brokerctl_can_explains_decisions_to_admins_only(
    secured: BrokerProcess, instance_id: str, buckets: tuple[str, str]
) -> None:
    data, _ = buckets
    ask = ("can", "--identity", "svc-ci", "--instance", instance_id, "--bucket", data)
    admin = ("--token", TOKENS["platform-admin"])

    allowed = brokerctl(secured, *ask, "--access", "read", "--prefix", "builds/x/", *admin)
    refused = brokerctl(secured, *ask, "--access", "list", *admin, expect=4)
    not_admin = brokerctl(secured, *ask, "--access", "read", "--token", TOKENS["svc-ci"], expect=4)

    assert "allowed:        yes" in allowed.stdout
    assert "expires after:  8h" in allowed.stdout
    assert "access list is not one of read, upload" in refused.stderr
    assert "only an admin may explain access decisions (PERMISSION_DENIED)" in not_admin.stderr


def test_sighup_reloads_the_policy_and_keeps_it_when_the_new_one_is_bad(
    secured: BrokerProcess, policy_file: Path, instance_id: str, buckets: tuple[str, str]
) -> None:
    data, _ = buckets
    original = policy_file.read_text()

    def web_may_list() -> bool:
        with client(secured, "svc-web") as web:
            try:
                web.grant(instance_id, data, "list", dry_run=True)
            except errors.PermissionDenied:
                return False
        return True

    try:
        assert not web_may_list()
        policy_file.write_text(original + WEB_RULE.format(data=data))
        hang_up(secured)
        wait_until(web_may_list, what="svc-web allowed to list after the reload")

        policy_file.write_text(original + "  - identities: [svc-web]\n    access: [write]\n")
        hang_up(secured)
        wait_until(
            lambda: "access policy not reloaded" in "".join(secured.output),
            what="the broker logging that the bad policy was not reloaded",
        )
        assert web_may_list()
    finally:
        policy_file.write_text(original)
        hang_up(secured)
        wait_until(lambda: not web_may_list(), what="the original policy back in force")
