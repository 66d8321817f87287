"""BROKER_AUTH_MODE and its files: what each mode needs, checked before the server starts."""

from pathlib import Path
from typing import Any

import pytest

from broker.sandbox.box import sandbox_settings
from broker.settings import Settings

FILE = Path("/etc/accessbroker/some.yaml")


pytestmark = pytest.mark.usefixtures("no_security_environment")


def test_the_default_is_token_mode_which_needs_its_tokens_and_policy_files() -> None:
    settings = Settings()

    assert settings.auth_mode is None
    assert settings.authentication == "token"
    assert settings.security_problems() == [
        "auth mode token (the default) needs BROKER_TOKENS_FILE",
        "auth mode token (the default) needs BROKER_POLICY_FILE: without rules every request "
        "would be refused",
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"tokens_file": FILE, "policy_file": FILE},
        {"tokens_file": FILE, "policy_file": FILE, "tls_cert": FILE, "tls_key": FILE},
        {
            "auth_mode": "mtls",
            "policy_file": FILE,
            "tls_cert": FILE,
            "tls_key": FILE,
            "tls_client_ca": FILE,
        },
        {"auth_mode": "none"},
        {"auth_mode": "none", "policy_file": FILE, "tls_cert": FILE, "tls_key": FILE},
    ],
)
def test_complete_configurations_have_no_problems(fields: dict[str, Any]) -> None:
    assert Settings(**fields).security_problems() == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"auth_mode": "mtls", "policy_file": FILE}, "mtls needs BROKER_TLS_CERT, BROKER_TLS_KEY"),
        (
            {"auth_mode": "mtls", "policy_file": FILE, "tls_cert": FILE, "tls_key": FILE},
            "and BROKER_TLS_CLIENT_CA",
        ),
        ({"auth_mode": "none", "tls_cert": FILE}, "BROKER_TLS_CERT and BROKER_TLS_KEY go together"),
        ({"auth_mode": "none", "tls_key": FILE}, "BROKER_TLS_CERT and BROKER_TLS_KEY go together"),
        ({"auth_mode": "none", "tls_client_ca": FILE}, "CLIENT_CA is only used in auth mode mtls"),
        ({"auth_mode": "none", "tokens_file": FILE}, "TOKENS_FILE is only used in auth mode token"),
        ({"auth_mode": "token", "policy_file": FILE}, "auth mode token needs BROKER_TOKENS_FILE"),
        ({"auth_mode": "token", "tokens_file": FILE}, "auth mode token needs BROKER_POLICY_FILE"),
    ],
)
def test_incomplete_or_contradictory_configurations_are_named(
    fields: dict[str, Any], problem: str
) -> None:
    problems = Settings(**fields).security_problems()

    assert any(problem in p for p in problems), problems


def test_files_come_from_the_environment_and_empty_means_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BROKER_AUTH_MODE", "mtls")
    monkeypatch.setenv("BROKER_TLS_CERT", "/tls/server.crt")
    monkeypatch.setenv("BROKER_POLICY_FILE", "")

    settings = Settings()

    assert (settings.authentication, settings.tls_cert) == ("mtls", Path("/tls/server.crt"))
    assert settings.policy_file is None


def test_the_sandbox_turns_authentication_off_unless_a_mode_is_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert sandbox_settings(Settings()).authentication == "none"

    monkeypatch.setenv("BROKER_AUTH_MODE", "token")
    assert sandbox_settings(Settings()).authentication == "token"
