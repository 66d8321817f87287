"""deploy/prometheus/alerts.yaml is valid (promtool check rules) and its alerts fire on the
series that should wake someone and stay quiet otherwise (promtool test rules)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (apt-get install prometheus; .ci/run does in CI)",
)


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *arguments], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )


def alert_names() -> list[str]:
    rules = yaml.safe_load((RULES / "alerts.yaml").read_text())
    return [rule["alert"] for group in rules["groups"] for rule in group["rules"]]


def test_the_alert_rules_are_valid() -> None:
    checked = promtool("check", "rules", "alerts.yaml")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in checked.stdout


def test_every_alert_is_made_to_fire() -> None:
    tests = yaml.safe_load((RULES / "alerts_test.yaml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }

    assert set(alert_names()) == fired


def test_the_alerts_fire_when_they_should_and_only_then() -> None:
    tested = promtool("test", "rules", "alerts_test.yaml")

    assert tested.returncode == 0, tested.stdout + tested.stderr
