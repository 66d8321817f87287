"""`access-broker serve` refuses to start, changing nothing, without what its auth mode needs."""

from pathlib import Path

import pytest

from broker.entrypoints.cli import main
from tests.credentials import write_tokens_file
from tests.places import HOME_REGION

pytestmark = pytest.mark.usefixtures("no_security_environment")
BOUNDARY = "arn:aws:iam::123456789012:policy/accessbroker-boundary"


@pytest.fixture(autouse=True)
def bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The boundary `serve` requires, so each test reaches what it is about."""
    monkeypatch.setenv("BROKER_PERMISSIONS_BOUNDARY_ARN", BOUNDARY)


def test_serving_aws_without_a_permissions_boundary_refuses_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BROKER_PERMISSIONS_BOUNDARY_ARN")
    tokens = write_tokens_file(tmp_path / "tokens.yaml", {"a": "token-a"})
    policy = tmp_path / "policy.yaml"
    policy.write_text("admins: [a]\n")

    assert main(_serve(tmp_path, "--tokens-file", str(tokens), "--policy-file", str(policy))) == 2

    error = capsys.readouterr().err
    assert "BROKER_PERMISSIONS_BOUNDARY_ARN is required outside the sandbox" in error
    assert not (tmp_path / "broker.db").exists()


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:policy/some-other-policy",
        "arn:aws:iam::123456789012:policy/x:policy/accessbroker-boundary",
        "arn:aws:iam::aws:policy/AdministratorAccess",
        "accessbroker-boundary",
    ],
)
def test_a_boundary_not_named_accessbroker_boundary_is_refused(
    arn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_PERMISSIONS_BOUNDARY_ARN", arn)

    assert main(_serve(tmp_path)) == 2

    error = capsys.readouterr().err
    assert "permissions_boundary_arn" in error
    assert "must be the ARN of the managed policy accessbroker-boundary on the root path" in error


def _serve(tmp_path: Path, *flags: str) -> list[str]:
    return ["serve", "--database-url", f"sqlite:///{tmp_path / 'broker.db'}", *flags]


def test_the_default_token_mode_without_its_files_refuses_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_serve(tmp_path)) == 2

    error = capsys.readouterr().err
    assert "invalid configuration" in error
    assert "auth mode token (the default) needs BROKER_TOKENS_FILE" in error
    assert "needs BROKER_POLICY_FILE" in error
    assert not (tmp_path / "broker.db").exists()


def test_an_unusable_tokens_file_refuses_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens: [{identity: a, sha256: nope}]\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text("admins: [a]\n")

    flags = ("--tokens-file", str(tokens), "--policy-file", str(policy))
    assert main(_serve(tmp_path, *flags)) == 2

    assert f"tokens file {tokens}: tokens[0]: sha256 must be" in capsys.readouterr().err
    assert not (tmp_path / "broker.db").exists()


def test_an_unusable_policy_file_refuses_to_start_before_the_database_is_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A region, so that the broker gets as far as the policy file (it checks the policy's
    # accounts against the accounts it serves, which need a home region).
    monkeypatch.setenv("AWS_DEFAULT_REGION", HOME_REGION)
    tokens = write_tokens_file(tmp_path / "tokens.yaml", {"a": "token-a"})
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: [{identities: [a], buckets: [b], access: [write]}]\n")

    flags = ("--tokens-file", str(tokens), "--policy-file", str(policy))
    assert main(_serve(tmp_path, *flags)) == 2

    assert "rule 1: access: unknown access 'write'" in capsys.readouterr().err
    assert not (tmp_path / "broker.db").exists()


def test_mtls_without_certificates_refuses_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("admins: [a]\n")

    assert main(_serve(tmp_path, "--auth-mode", "mtls", "--policy-file", str(policy))) == 2

    assert "auth mode mtls needs BROKER_TLS_CERT" in capsys.readouterr().err
