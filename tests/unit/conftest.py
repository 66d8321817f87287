"""Fixtures shared by the unit tests."""

import pytest

SECURITY_VARIABLES = (
    "AUTH_MODE",
    "TLS_CERT",
    "TLS_KEY",
    "TLS_CLIENT_CA",
    "TOKENS_FILE",
    "POLICY_FILE",
)


@pytest.fixture
def no_security_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BROKER_AUTH_MODE or security file set by whoever runs the tests."""
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(f"BROKER_{name}", raising=False)
