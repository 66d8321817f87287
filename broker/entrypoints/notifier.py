"""The notifier: delivers grant state changes to each configured destination, in the
background, until stopped.

Every second it asks each destination that is due to be sent what it has not taken yet
(broker.service.notifying); a destination that failed is due again after a backoff that
doubles from 1 s with each failure in a row, up to BROKER_NOTIFY_MAX_BACKOFF_SECONDS.
"""

import logging
import threading
import time
from dataclasses import dataclass, field

from broker.domain.errors import BrokerError
from broker.entrypoints.metrics import NotificationMetrics
from broker.service.commands import DeliverNotifications, TrackDestinations
from broker.service.messagebus import MessageBus

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


@dataclass
class _Due:
    key: str
    at: float = field(default_factory=time.monotonic)


class Notifier:
    def __init__(
        self,
        bus: MessageBus,
        destinations: list[str],
        max_backoff_seconds: float,
        metrics: NotificationMetrics | None = None,
    ) -> None:
        self._bus, self._max_backoff, self._metrics = bus, max_backoff_seconds, metrics
        self._due = [_Due(key) for key in destinations]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)

    def start(self) -> None:
        """Records where each new destination starts (the newest event), then delivers in the
        background. Call it before serving: what happens from then on is delivered."""
        if self._due:
            self._bus.handle(TrackDestinations())
            self._thread.start()

    def stop(self, timeout: float) -> None:
        """Lets a delivery in progress finish within `timeout` seconds; what it did not
        record as delivered is sent again at the next start."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.wait(POLL_SECONDS):
            for due in self._due:
                if time.monotonic() >= due.at and not self._stopped.is_set():
                    due.at = time.monotonic() + self._pass(due.key)

    def _pass(self, key: str) -> float:
        """Delivers what `key` has not taken; the seconds until it is due again."""
        try:
            report = self._bus.handle(DeliverNotifications(destination=key))
        except BrokerError as error:  # the database is away: try again at the next poll
            log.warning("notifications to %s not delivered: %s", key, error)
            return 0.0
        except Exception:
            # The notifier must outlive a bad moment, as the sweep does: log, try later.
            log.exception("notifications to %s failed", key)
            return self._max_backoff
        if self._metrics is not None:
            self._metrics.passed(report)
        failures = report.state.failures
        if not failures:
            return 0.0
        log.warning(
            "notifications to %s: %s (%d failure(s) in a row; %d pending)",
            key,
            report.state.last_error,
            failures,
            report.pending,
        )
        return min(self._max_backoff, 2.0 ** (failures - 1))
