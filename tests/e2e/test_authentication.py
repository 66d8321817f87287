"""Each auth mode against the real server process: tokens, client certificates, TLS, none."""

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from accessbroker import BrokerClient, errors
from broker.sandbox import Emulator
from tests.credentials import CertificateAuthority, write_tokens_file
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.reloading import hang_up
from tests.waiting import wait_until

CI_TOKEN = "ci-token-9b8a7f6e5d4c"
ADMIN_TOKEN = "admin-token-0f1e2d3c4b5a"
# Anyone the broker authenticates may have anything: these tests are about who is calling.
POLICY = """\
admins: [platform-admin]
rules:
  - identities: ["*"]
    buckets: ["*"]
    access: [upload, read, read-write, list]
"""


def _policy_file(directory: Path) -> Path:
    path = directory / "policy.yaml"
    path.write_text(POLICY)
    return path


def _started(
    emulator: Emulator,
    directory: Path,
    tls: grpc.ChannelCredentials | None = None,
    **env: object,
) -> BrokerProcess:
    """A broker with its own database and POLICY in `directory`; stop() it when done."""
    process = BrokerProcess(
        emulator,
        f"sqlite:///{directory / 'broker.db'}",
        BROKER_POLICY_FILE=str(_policy_file(directory)),
        **{k: str(v) for k, v in env.items()},
    )
    process.start(tls)
    return process


def _output(process: BrokerProcess) -> str:
    return "".join(process.output)


# --- token mode


@pytest.fixture(scope="module")
def token_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("token-mode")
    write_tokens_file(
        directory / "tokens.yaml", {"svc-ci": CI_TOKEN, "platform-admin": ADMIN_TOKEN}
    )
    return directory


@pytest.fixture(scope="module")
def token_broker(emulator: Emulator, token_dir: Path) -> Iterator[BrokerProcess]:
    process = _started(
        emulator, token_dir, BROKER_AUTH_MODE="token", BROKER_TOKENS_FILE=token_dir / "tokens.yaml"
    )
    yield process
    process.stop()


def test_a_token_names_the_caller_on_grants_and_audit_events(
    token_broker: BrokerProcess, instance_id: str, buckets: tuple[str, str]
) -> None:
    with BrokerClient(token_broker.address, token=CI_TOKEN, timeout=60) as ci:
        granted = ci.grant(instance_id, buckets[0], "upload", prefix="ci/").grant
    with BrokerClient(token_broker.address, token=ADMIN_TOKEN, timeout=60) as admin:
        events = list(admin.audit(grant_id=granted.grant_id))

    assert granted.requested_by == "svc-ci"
    assert {e.actor for e in events if e.action.startswith(("grant.", "aws."))} == {"svc-ci"}
    assert CI_TOKEN not in _output(token_broker)


@pytest.mark.parametrize("token", [None, "wrong-token-5e4d"])
def test_no_token_or_a_wrong_one_is_unauthenticated(
    token_broker: BrokerProcess, instance_id: str, buckets: tuple[str, str], token: str | None
) -> None:
    with (
        BrokerClient(token_broker.address, token=token, timeout=30) as caller,
        pytest.raises(errors.Unauthenticated) as refused,
    ):
        caller.grant(instance_id, buckets[0], "read")

    assert token is None or token not in str(refused.value)
    assert token is None or token not in _output(token_broker)


def test_health_answers_without_credentials(token_broker: BrokerProcess) -> None:
    with grpc.insecure_channel(token_broker.address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())

    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_sighup_reloads_the_tokens_file_and_keeps_it_when_the_new_one_is_bad(
    emulator: Emulator, tmp_path: Path, instance_id: str, buckets: tuple[str, str]
) -> None:
    tokens = write_tokens_file(tmp_path / "tokens.yaml", {"svc-ci": CI_TOKEN})
    process = _started(emulator, tmp_path, BROKER_AUTH_MODE="token", BROKER_TOKENS_FILE=tokens)
    try:

        def works(token: str) -> bool:
            with BrokerClient(process.address, token=token, timeout=30) as caller:
                try:
                    caller.grant(instance_id, buckets[0], "list", dry_run=True)
                except errors.Unauthenticated:
                    return False
            return True

        write_tokens_file(tokens, {"svc-ci": "rotated-token-1a2b"})
        hang_up(process)
        wait_until(lambda: works("rotated-token-1a2b"), what="the rotated token accepted")
        assert not works(CI_TOKEN)

        tokens.write_text("tokens: [{identity: svc-ci}]\n")
        hang_up(process)
        wait_until(
            lambda: "tokens not reloaded" in _output(process),
            what="the broker logging that the bad tokens file was not reloaded",
        )
        assert works("rotated-token-1a2b")
    finally:
        process.stop()


def test_token_mode_without_its_files_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    executable = Path(sys.executable).with_name("access-broker")
    database = tmp_path / "broker.db"

    finished = subprocess.run(
        [
            str(executable),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            f"sqlite:///{database}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 2
    assert "auth mode token (the default) needs BROKER_TOKENS_FILE" in finished.stderr
    assert not database.exists()


# --- TLS, and mTLS with certificates made here


def _tls_env(ca: CertificateAuthority, directory: Path) -> dict[str, object]:
    cert, key = ca.issue("accessbroker", server=True).write(directory, "server")
    return {"BROKER_TLS_CERT": cert, "BROKER_TLS_KEY": key}


def test_token_mode_over_tls(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path, instance_id: str
) -> None:
    tokens = write_tokens_file(tmp_path / "tokens.yaml", {"svc-ci": CI_TOKEN})
    tls = grpc.ssl_channel_credentials(ca.pem)
    env = {"BROKER_AUTH_MODE": "token", "BROKER_TOKENS_FILE": tokens, **_tls_env(ca, tmp_path)}
    process = _started(emulator, tmp_path, tls, **env)
    try:
        with BrokerClient(process.address, token=CI_TOKEN, tls=tls, timeout=30) as caller:
            preview = caller.grant(instance_id, "any-bucket", "read", dry_run=True)
        with (
            BrokerClient(process.address, token=CI_TOKEN, timeout=5) as plaintext,
            pytest.raises(errors.Unavailable),
        ):
            plaintext.get("00000000-0000-0000-0000-000000000001")
    finally:
        process.stop()

    assert preview.grant.requested_by == "svc-ci"


@dataclass(frozen=True)
class MtlsBroker:
    process: BrokerProcess
    # Signs the server's certificate and the clients' it accepts.
    ca: CertificateAuthority

    def client(self, common_name: str, *uris: str) -> BrokerClient:
        pair = self.ca.issue(common_name, uris=uris)
        tls = grpc.ssl_channel_credentials(self.ca.pem, pair.key, pair.certificate)
        return BrokerClient(self.process.address, tls=tls, timeout=60)


@pytest.fixture(scope="module")
def mtls_broker(
    emulator: Emulator, ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MtlsBroker]:
    directory = tmp_path_factory.mktemp("mtls-mode")
    client_ca = directory / "clients-ca.crt"
    client_ca.write_bytes(ca.pem)
    probe = ca.issue("health-probe")
    tls = grpc.ssl_channel_credentials(ca.pem, probe.key, probe.certificate)
    env = {
        "BROKER_AUTH_MODE": "mtls",
        "BROKER_TLS_CLIENT_CA": client_ca,
        "BROKER_HEALTH_LISTEN": "127.0.0.1:0",
        **_tls_env(ca, directory),
    }
    process = _started(emulator, directory, tls, **env)
    yield MtlsBroker(process, ca)
    process.stop()


@pytest.mark.parametrize(
    ("names", "identity"),
    [
        (("builder", "spiffe://example.org/ci/builder"), "spiffe://example.org/ci/builder"),
        (("nightly-reports",), "nightly-reports"),
    ],
)
def test_a_client_certificate_names_the_caller_by_uri_san_else_cn(
    mtls_broker: MtlsBroker,
    instance_id: str,
    buckets: tuple[str, str],
    names: tuple[str, ...],
    identity: str,
) -> None:
    with mtls_broker.client(*names) as caller:
        granted = caller.grant(instance_id, buckets[0], "read", prefix="m/").grant

    assert granted.requested_by == identity


def test_a_certificate_from_another_ca_or_none_is_refused(
    mtls_broker: MtlsBroker, buckets: tuple[str, str]
) -> None:
    stranger = CertificateAuthority("another CA").issue("intruder")
    ca = mtls_broker.ca.pem
    foreign = grpc.ssl_channel_credentials(ca, stranger.key, stranger.certificate)
    without_certificate = grpc.ssl_channel_credentials(ca)

    for tls in (foreign, without_certificate):
        with (
            BrokerClient(mtls_broker.process.address, tls=tls, timeout=5) as caller,
            pytest.raises(errors.Unavailable),
        ):
            caller.grant("i-0123456789abcdef0", buckets[0], "read", dry_run=True)


def test_under_mtls_a_probe_without_a_certificate_checks_health_on_the_health_port(
    mtls_broker: MtlsBroker,
) -> None:
    with grpc.insecure_channel(mtls_broker.process.health_address) as channel:
        check = health_pb2.HealthCheckRequest(service="")
        answer = health_pb2_grpc.HealthStub(channel).Check(check, timeout=30, wait_for_ready=True)

    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_brokerctl_speaks_mtls_given_its_files_as_options_or_variables(
    mtls_broker: MtlsBroker, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(mtls_broker.ca.pem)
    cert, key = mtls_broker.ca.issue("ops-laptop").write(tmp_path, "client")
    options = ["--tls-ca", str(ca), "--tls-cert", str(cert), "--tls-key", str(key)]
    variables = {"BROKER_TLS_CA": ca, "BROKER_TLS_CERT": cert, "BROKER_TLS_KEY": key}

    by_options = _brokerctl(mtls_broker.process, *options, "list", "-o", "json")
    by_variables = _brokerctl(mtls_broker.process, "list", "-o", "json", **variables)
    without = _brokerctl(mtls_broker.process, "list")
    half = _brokerctl(mtls_broker.process, "--tls-cert", str(cert), "list")

    assert (by_options.returncode, by_variables.returncode) == (0, 0), by_options.stderr
    assert "grants" in by_options.stdout and "grants" in by_variables.stdout
    assert without.returncode == 5  # unavailable: the broker speaks only TLS with certificates
    assert half.returncode == 2
    assert "a client certificate needs its key" in half.stderr


def test_sighup_rotates_the_servers_certificate_under_a_live_connection(
    emulator: Emulator, ca: CertificateAuthority, tmp_path: Path
) -> None:
    tokens = write_tokens_file(tmp_path / "tokens.yaml", {"svc-ci": CI_TOKEN})
    env = {"BROKER_AUTH_MODE": "token", "BROKER_TOKENS_FILE": tokens, **_tls_env(ca, tmp_path)}
    old_trust = grpc.ssl_channel_credentials(ca.pem)
    process = _started(emulator, tmp_path, old_trust, **env)
    successor = CertificateAuthority("the successor CA")
    new_trust = grpc.ssl_channel_credentials(successor.pem)
    try:
        with BrokerClient(process.address, token=CI_TOKEN, tls=old_trust, timeout=30) as live:
            list(live.list_grants())  # the connection is made, with the old certificate
            successor.issue("accessbroker", server=True).write(tmp_path, "server")
            hang_up(process)
            wait_until(
                lambda: "reloaded the TLS files" in _output(process),
                what="the broker re-reading its certificate",
            )
            (tmp_path / "server.key").write_text("not a key")
            hang_up(process)
            wait_until(
                lambda: "TLS files not reloaded, the ones in force stay" in _output(process),
                what="the broker keeping its certificate over a broken key",
            )
            still_live = list(live.list_grants())
            new_with_new = _reaches(process.address, new_trust)
            new_with_old = _reaches(process.address, old_trust)
    finally:
        process.stop()

    assert still_live == []
    assert new_with_new
    assert not new_with_old


def _reaches(address: str, tls: grpc.ChannelCredentials) -> bool:
    """Whether a new connection trusting `tls` gets an answer from the broker."""
    with BrokerClient(address, token=CI_TOKEN, tls=tls, timeout=5) as caller:
        try:
            list(caller.list_grants())
        except errors.Unavailable:
            return False
    return True


def _brokerctl(process: BrokerProcess, *argv: str, **env: Path) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_TLS_")}
    variables |= {"BROKER_ADDRESS": process.address, **{k: str(v) for k, v in env.items()}}
    variables.pop("BROKERCTL_DEBUG", None)
    brokerctl = Path(sys.executable).with_name("brokerctl")
    return subprocess.run(
        [str(brokerctl), *argv],
        check=False,
        env=variables,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- none


def test_none_mode_warns_at_start_and_calls_everyone_anonymous(
    broker: BrokerProcess, instance_id: str, buckets: tuple[str, str]
) -> None:
    with BrokerClient(broker.address, timeout=30) as caller:
        preview = caller.grant(instance_id, buckets[0], "read", dry_run=True)

    assert preview.grant.requested_by == "anonymous"
    output = _output(broker)
    assert "authentication is off (auth mode none): every caller is 'anonymous'" in output
    assert "no access policy (BROKER_POLICY_FILE): every caller may do everything" in output
