"""Every run says how many tests skipped and why; where no skip is expected, a skip fails the run.

A skipped test is not a passing one. On a laptop without PostgreSQL, its tier skips and says
how to run it. In CI (`.ci/run` sets BROKER_TEST_NO_SKIPS=1) every tier must run: a skip there
means a tier vanished, so the run fails naming the skips.
"""

import os
from collections import Counter

import pytest
from _pytest.terminal import TerminalReporter

NO_SKIPS_VARIABLE = "BROKER_TEST_NO_SKIPS"


def _skip_reasons(reporter: TerminalReporter) -> Counter[str]:
    reasons: Counter[str] = Counter()
    for report in reporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    return reasons


def _reporter(config: pytest.Config) -> TerminalReporter | None:
    plugin = config.pluginmanager.get_plugin("terminalreporter")
    return plugin if isinstance(plugin, TerminalReporter) else None


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fails a run with skips where none may skip (the summary below says which)."""
    reporter = _reporter(session.config)
    if _is_xdist_worker(session.config) or reporter is None:
        return
    if os.environ.get(NO_SKIPS_VARIABLE) == "1" and _skip_reasons(reporter):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    if _is_xdist_worker(config):
        return
    reasons = _skip_reasons(terminalreporter)
    terminalreporter.section("skips")
    terminalreporter.line(f"{sum(reasons.values())} skipped")
    for reason, count in reasons.most_common():
        terminalreporter.line(f"  {count} x {reason}")
    if reasons and os.environ.get(NO_SKIPS_VARIABLE) == "1":
        terminalreporter.line(
            f"FAILED: {NO_SKIPS_VARIABLE}=1 and tests skipped: a tier of the suite did not run",
            red=True,
        )
