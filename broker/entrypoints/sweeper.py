"""The background sweep: reconciles once at start, then every interval, until stopped.

Every sweep ends the grants whose expiry has passed and finishes pending and revoking grants.
Chores that read much of AWS or the database run at start and then on intervals of their own:
removing the roles and profiles no grant needs, finding and repairing drift, reading each
account's IAM usage (each a command sent through the bus, as the system), and verifying the
audit trail's hash chain.
"""

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from opentelemetry.trace import NoOpTracer, Tracer

from broker.domain.audit_chain import Anchor, ChainReport
from broker.domain.drift import DriftKind
from broker.entrypoints.metrics import SweepMetrics
from broker.service.commands import (
    ExpireGrants,
    FinishSettling,
    MeasureQuotas,
    RemoveOrphans,
    RepairDrift,
)
from broker.service.messagebus import MessageBus

log = logging.getLogger(__name__)

# The chores, as the metrics name them; the first two run at every sweep.
EXPIRY, SETTLING, ORPHANS, DRIFT, AUDIT = "expiry", "settling", "orphans", "drift", "audit"
QUOTAS = "quotas"
EVERY_SWEEP = (EXPIRY, SETTLING)


@dataclass
class Chore:
    """Work a sweep does at start and then every `interval_seconds`."""

    name: str
    interval_seconds: float
    run: Callable[[MessageBus], object]
    due: float = field(default_factory=time.monotonic)


class Sweeper:
    def __init__(
        self,
        bus: MessageBus,
        interval_seconds: float,
        chores: list[Chore],
        metrics: SweepMetrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._bus, self._interval, self._chores = bus, interval_seconds, chores
        self._metrics = metrics
        # Each run of a chore is a trace of its own: the convergences it leads are under it.
        self._tracer = tracer or NoOpTracer()
        if metrics is not None:
            for name in EVERY_SWEEP:
                metrics.interval.labels(name).set(interval_seconds)
            for chore in chores:
                metrics.interval.labels(chore.name).set(chore.interval_seconds)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Lets a sweep in progress finish within `timeout` seconds; a sweep still stuck on AWS
        then ends with the process (its work is recorded and finished at the next start)."""
        self._stopped.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._sweep()
            if self._stopped.wait(self._interval):
                return

    def _sweep(self) -> None:
        try:
            self._counted(EXPIRY, lambda: self._bus.handle(ExpireGrants()))
            # Settling before the chores: a revocation it finishes leaves nothing to find.
            self._counted(SETTLING, lambda: self._bus.handle(FinishSettling()))
            for chore in self._chores:
                if time.monotonic() >= chore.due:
                    self._counted(chore.name, partial(chore.run, self._bus))
                    # Due again only after a pass that got through.
                    chore.due = time.monotonic() + chore.interval_seconds
        except Exception:
            # The sweep must outlive a bad moment (the database away, say): log, try next time.
            log.exception("the sweep failed; it runs again in %.0f s", self._interval)

    def _counted(self, name: str, work: Callable[[], object]) -> None:
        """Runs one chore, counting how it went (when metrics are on) and tracing it."""
        try:
            with self._tracer.start_as_current_span(f"accessbroker.sweep.{name}"):
                work()
        except Exception:
            if self._metrics is not None:
                self._metrics.ran(name, succeeded=False)
            raise
        if self._metrics is not None:
            self._metrics.ran(name, succeeded=True)


def orphan_chore(interval_seconds: float) -> Chore:
    def run(bus: MessageBus) -> None:
        swept = bus.handle(RemoveOrphans())
        if swept.removed:
            removed = ", ".join(str(instance) for instance in swept.removed)
            log.info("removed resources no grant needs, of %s", removed)

    return Chore(ORPHANS, interval_seconds, run)


def drift_chore(interval_seconds: float, metrics: SweepMetrics | None = None) -> Chore:
    def run(bus: MessageBus) -> None:
        findings = bus.handle(RepairDrift())
        if metrics is not None:
            left = Counter(f.drift.kind.value for f in findings if not f.repaired)
            metrics.left_unrepaired({kind.value: left[kind.value] for kind in DriftKind})
        for finding in findings:
            drift = finding.drift
            if metrics is not None:
                metrics.found(drift.kind.value, repaired=finding.repaired)
            log.warning(
                "drift on %s: %s (expected %s, found %s)%s",
                drift.instance,
                drift.kind.value,
                drift.expected,
                drift.actual,
                ", repaired" if finding.repaired else "",
            )

    return Chore(DRIFT, interval_seconds, run)


def quota_chore(interval_seconds: float) -> Chore:
    """Reads each account's IAM usage, for accessbroker_iam_* (see docs/operations.md)."""
    return Chore(QUOTAS, interval_seconds, lambda bus: bus.handle(MeasureQuotas()))


def audit_chore(
    interval_seconds: float,
    verify: Callable[[Anchor | None], ChainReport],
    metrics: SweepMetrics | None = None,
) -> Chore:
    """Verifies the audit chain, each time anchored on the newest event the last intact walk
    saw: a trail cut back past it, or rewritten up to it, is broken even if it chains."""
    anchor: Anchor | None = None

    def run(_: MessageBus) -> None:
        nonlocal anchor
        report = verify(anchor)
        if metrics is not None:
            metrics.verified(report)
        if report.broken is not None:
            broken = report.broken
            log.error(
                "the audit trail's hash chain is broken at event %d: %s (see docs/audit.md)",
                broken.event_id,
                broken.reason,
            )
            return
        anchor = report.newest or anchor
        log.info("audit chain intact: %d events", report.intact_events)

    return Chore(AUDIT, interval_seconds, run)
