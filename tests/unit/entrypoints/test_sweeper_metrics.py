"""The background sweep counts its chores' runs, the time of each one's last success beside its
interval, the drift it finds, and the audit chain's verdict, for /metrics; and traces each run
of a chore."""

from dataclasses import dataclass, field

from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry

from broker.domain.audit_chain import Anchor, BrokenLink, ChainReport
from broker.domain.errors import AwsUnavailable
from broker.entrypoints.metrics import SweepMetrics
from broker.entrypoints.sweeper import Chore, Sweeper, audit_chore, drift_chore
from broker.service.messagebus import MessageBus
from tests.spans import recording_tracer
from tests.unit.service.fakes import POLICY, ROLE, World, grant_command
from tests.waiting import wait_until

HOUR = 3600.0


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def sweep_once(
    w: World,
    chores: list[Chore],
    sweeps: SweepMetrics,
    registry: CollectorRegistry,
    tracer: Tracer | None = None,
) -> None:
    """Runs the sweep until its first pass has been counted, then stops it."""
    sweeper = Sweeper(w.bus, HOUR, chores, sweeps, tracer)
    sweeper.start()
    try:
        last = chores[-1].name
        runs = "accessbroker_sweep_runs_total"
        wait_until(
            lambda: any(
                value(registry, runs, chore=last, outcome=outcome)
                for outcome in ("success", "failure")
            ),
            what=f"the {last} chore counted",
        )
    finally:
        sweeper.stop(timeout=30)


def test_each_chore_is_counted_with_its_last_success_and_interval(w: World) -> None:
    w.handle(grant_command("photos"))
    del w.aws.roles[ROLE].policies[POLICY]  # drift, for the drift chore to find and repair
    registry = CollectorRegistry()
    sweeps = SweepMetrics(registry)

    sweep_once(w, [drift_chore(2 * HOUR, sweeps)], sweeps, registry)

    for chore in ("expiry", "settling", "drift"):
        assert value(registry, "accessbroker_sweep_runs_total", chore=chore, outcome="success") == 1
        assert (
            value(registry, "accessbroker_sweep_last_success_timestamp_seconds", chore=chore) or 0
        ) > 0
    assert value(registry, "accessbroker_sweep_interval_seconds", chore="expiry") == HOUR
    assert value(registry, "accessbroker_sweep_interval_seconds", chore="drift") == 2 * HOUR
    assert value(registry, "accessbroker_drift_findings_total", kind="policy", repaired="true") == 1
    assert POLICY in w.aws.roles[ROLE].policies


def test_drift_left_unrepaired_is_a_gauge_by_kind(w: World) -> None:
    w.handle(grant_command("photos"))
    del w.aws.roles[ROLE].policies[POLICY]
    w.aws.fail("put_role_policy", AwsUnavailable("AWS PutRolePolicy failed: Throttling"), 100)
    registry = CollectorRegistry()
    sweeps = SweepMetrics(registry)

    sweep_once(w, [drift_chore(HOUR, sweeps)], sweeps, registry)

    assert value(registry, "accessbroker_drift_unrepaired", kind="policy") == 1
    assert value(registry, "accessbroker_drift_unrepaired", kind="role") == 0


def test_a_chore_that_fails_is_counted_as_a_failure_with_no_success_time(w: World) -> None:
    def fail(bus: MessageBus) -> None:
        raise RuntimeError("the chore broke")

    registry = CollectorRegistry()

    sweep_once(w, [Chore("broken", HOUR, fail)], SweepMetrics(registry), registry)

    assert value(registry, "accessbroker_sweep_runs_total", chore="broken", outcome="failure") == 1
    assert (
        value(registry, "accessbroker_sweep_last_success_timestamp_seconds", chore="broken") is None
    )


@dataclass
class Trail:
    """What verify() answers, in turn; and the anchors it was asked to hold to."""

    reports: list[ChainReport]
    anchors: list[Anchor | None] = field(default_factory=list)

    def verify(self, anchor: Anchor | None) -> ChainReport:
        self.anchors.append(anchor)
        return self.reports[len(self.anchors) - 1]


def test_the_audit_chain_has_no_verdict_until_a_verification_ends() -> None:
    registry = CollectorRegistry()
    SweepMetrics(registry)

    assert value(registry, "accessbroker_audit_chain_intact") is None
    assert value(registry, "accessbroker_audit_chain_verified_events") is None


def test_each_verification_holds_to_the_newest_event_the_last_intact_one_saw(w: World) -> None:
    first, second = Anchor(3, "a" * 64), Anchor(5, "b" * 64)
    broken = ChainReport(2, Anchor(2, "c" * 64), BrokenLink(3, "its content does not match"))
    trail = Trail([ChainReport(3, first, None), ChainReport(5, second, None), broken, broken])
    registry = CollectorRegistry()
    chore = audit_chore(HOUR, trail.verify, SweepMetrics(registry))

    chore.run(w.bus)
    chore.run(w.bus)
    assert value(registry, "accessbroker_audit_chain_intact") == 1
    assert value(registry, "accessbroker_audit_chain_verified_events") == 5
    chore.run(w.bus)
    chore.run(w.bus)

    # A broken chain does not move the anchor: the next walk still holds to event 5.
    assert trail.anchors == [None, first, second, second]
    assert value(registry, "accessbroker_audit_chain_intact") == 0
    assert value(registry, "accessbroker_audit_chain_verified_events") == 2


def test_each_run_of_a_chore_is_a_trace_of_its_own(w: World) -> None:
    traced = recording_tracer()
    registry = CollectorRegistry()
    sweeps = SweepMetrics(registry)

    sweep_once(w, [drift_chore(HOUR, sweeps)], sweeps, registry, traced.tracer)

    spans = traced.ended()
    assert [span.name for span in spans] == [
        "accessbroker.sweep.expiry",
        "accessbroker.sweep.settling",
        "accessbroker.sweep.drift",
    ]
    assert all(span.parent is None for span in spans)
