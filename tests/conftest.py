"""Fixtures shared by every test suite."""

from collections.abc import Iterator

import pytest

from broker.sandbox import Emulator

# The suite's skip report and CI's no-skip rule, as hooks of this conftest.
from tests.skips import pytest_sessionfinish, pytest_terminal_summary

__all__ = ["emulator", "pytest_sessionfinish", "pytest_terminal_summary"]


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One moto server with IAM authorization enforced, shared by the whole session.

    moto's state is process-wide and never reset: use fresh instances and unique names.
    """
    with Emulator() as running:
        yield running
