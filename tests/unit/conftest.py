"""Fixtures shared by the unit tests."""

import pytest

from tests.unit.service.fakes import INSTANCE, World, world

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


@pytest.fixture
def w(request: pytest.FixtureRequest) -> World:
    """A fresh world of fakes (tests/unit/service/fakes.py) in which INSTANCE exists; a module
    that needs other instances to exist names them all in its INSTANCES."""
    instances: tuple[str, ...] = getattr(request.module, "INSTANCES", (INSTANCE,))
    return world(*instances)
