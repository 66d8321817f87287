"""The background sweep: reconciles once at start, then every interval, until stopped."""

import logging
import threading

from broker.service.dependencies import Dependencies
from broker.service.reconciler import reconcile_settling

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, deps: Dependencies, interval_seconds: float) -> None:
        self._deps, self._interval = deps, interval_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Lets a sweep in progress finish its current instance's convergence first."""
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._sweep()
            if self._stopped.wait(self._interval):
                return

    def _sweep(self) -> None:
        try:
            reconcile_settling(self._deps)
        except Exception:
            # The sweep must outlive a bad moment (the database away, say): log, try next time.
            log.exception("the sweep failed; it runs again in %.0f s", self._interval)
