"""CI runs every tier: `.ci/run` refuses to go on without PostgreSQL, and a skip fails the run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _fake_command(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def _run_ci(
    tmp_path: Path, *, ci: bool, postgres_answers: bool
) -> subprocess.CompletedProcess[str]:
    """`.ci/run` with psql, the tools CI installs, and make replaced: psql answers or not; make
    records its environment."""
    fakes = tmp_path / "bin"
    fakes.mkdir()
    _fake_command(fakes, "psql", "exit 0" if postgres_answers else "exit 2")
    # Present, so that CI does not try to install them for real.
    for tool in ("prometheus", "podman", "mmdebstrap", "chromium"):
        _fake_command(fakes, tool, "exit 0")
    _fake_command(fakes, "make", f'env > "{tmp_path}/make-env"; echo "$@" > "{tmp_path}/make-args"')
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CI", "BROKER_TEST_DATABASE_URL", "BROKER_TEST_NO_SKIPS")
    }
    env["PATH"] = f"{fakes}:{env['PATH']}"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [str(REPO / ".ci" / "run")],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _make_environment(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "make-env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_ci_without_postgresql_fails_before_running_the_suite(tmp_path: Path) -> None:
    result = _run_ci(tmp_path, ci=True, postgres_answers=False)

    assert result.returncode == 1
    assert "PostgreSQL does not answer" in result.stderr
    assert not (tmp_path / "make-env").exists(), "the suite must not run without its tiers"


def test_ci_with_postgresql_runs_every_tier_and_forbids_skips(tmp_path: Path) -> None:
    result = _run_ci(tmp_path, ci=True, postgres_answers=True)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "make-args").read_text().split() == ["test"]
    env = _make_environment(tmp_path)
    assert env["BROKER_TEST_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["BROKER_TEST_NO_SKIPS"] == "1"


def test_a_laptop_without_postgresql_still_runs_the_suite(tmp_path: Path) -> None:
    result = _run_ci(tmp_path, ci=False, postgres_answers=False)

    assert result.returncode == 0, result.stderr
    env = _make_environment(tmp_path)
    assert "BROKER_TEST_DATABASE_URL" not in env
    assert "BROKER_TEST_NO_SKIPS" not in env


SKIPPING_SUITE = """
import pytest

from tests.skips import pytest_sessionfinish, pytest_terminal_summary

__all__ = ["pytest_sessionfinish", "pytest_terminal_summary"]
"""


@pytest.mark.parametrize(("no_skips", "exit_code"), [("1", 1), ("", 0)])
def test_a_skip_fails_the_run_only_where_none_may_skip(
    tmp_path: Path, no_skips: str, exit_code: int
) -> None:
    (tmp_path / "conftest.py").write_text(SKIPPING_SUITE)
    (tmp_path / "test_tier.py").write_text(
        "import pytest\n\n"
        "def test_runs() -> None:\n    assert True\n\n"
        "def test_tier() -> None:\n    pytest.skip('no server for this tier')\n"
    )
    env = {**os.environ, "BROKER_TEST_NO_SKIPS": no_skips, "PYTHONPATH": str(REPO)}

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path)],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == exit_code, result.stdout
    assert "1 skipped\n  1 x no server for this tier" in result.stdout
    assert ("a tier of the suite did not run" in result.stdout) is (no_skips == "1")
