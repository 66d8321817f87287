"""deploy/grafana/accessbroker.json and deploy/prometheus/alerts.yaml query only series the
broker exports: a renamed metric fails here, not on a dark dashboard or a silent alert."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import yaml

from broker.adapters.telemetry import BrokerTelemetry
from broker.domain.access import GrantState
from broker.domain.audit_chain import ChainReport
from broker.entrypoints.metrics import every_metric
from broker.service.commands import DeliveryReport
from broker.service.ports import DeliveryState, StateCount
from tests.unit.entrypoints.readings import Readings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\b(?:grpc_server|accessbroker)_[a-z_]+\b")


def exported() -> set[str]:
    """The name of every sample the broker's metrics produce, each of them touched once."""
    telemetry = BrokerTelemetry()
    telemetry.convergence_took(0.5, "converged")
    telemetry.authorization_decided("GrantAccess", allowed=True)
    readings = Readings(
        grants={GrantState.PENDING: StateCount(1, datetime.now(UTC))},
        calls={("iam", "GetRole", "success"): 1},
        retries={"throttling": 1},
        kept=telemetry.collectors(),
    )
    # Registered as /metrics registers them: a metric left out there is left out here.
    registry, kept = every_metric(readings)
    server, sweeps = kept.grpc, kept.sweeps
    labels = ("unary", "accessbroker.v1.AccessBroker", "GetGrant")
    for counter in (server.started, server.received, server.sent):
        counter.labels(*labels).inc()
    server.handled.labels(*labels, "OK").inc()
    server.handling.labels(*labels).observe(0.1)
    sweeps.ran("expiry", succeeded=True)
    sweeps.interval.labels("expiry").set(30)
    sweeps.found("policy", repaired=True)
    sweeps.verified(ChainReport(1, None, None))
    state = DeliveryState("webhook:0a1b", 3, failures=1, last_error="unreachable")
    kept.notifications.passed(DeliveryReport(1, 2, state))
    return {sample.name for family in registry.collect() for sample in family.samples}


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "accessbroker.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def alert_queries() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_the_dashboard_and_the_alerts_query_only_exported_metrics() -> None:
    names = exported()
    queries = dashboard_queries() + alert_queries()

    used = {name for query in queries for name in METRIC.findall(query)}

    assert used, "no query names a broker metric"
    assert used <= names, f"not exported: {sorted(used - names)}"


def test_every_panel_has_a_unique_id_and_a_place() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "accessbroker.json").read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]

    assert len(ids) == len(set(ids))
    assert all({"x", "y", "w", "h"} <= set(panel["gridPos"]) for panel in dashboard["panels"])
