"""The background sweep: reconciles once at start, then every interval, until stopped.

Every sweep ends the grants whose expiry has passed and finishes pending and revoking grants; at
start, and then every orphan interval, it also removes the roles and profiles no grant needs.
"""

import logging
import threading
import time

from broker.service.dependencies import Dependencies
from broker.service.reconciler import expire_grants, reconcile_settling, remove_orphans

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self, deps: Dependencies, interval_seconds: float, orphan_interval_seconds: float | None
    ) -> None:
        """`orphan_interval_seconds` None: never remove orphans."""
        self._deps, self._interval = deps, interval_seconds
        self._orphan_interval = orphan_interval_seconds
        self._orphans_due = time.monotonic()  # at start
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
            expire_grants(self._deps)
            reconcile_settling(self._deps)
            if self._orphan_interval is not None and time.monotonic() >= self._orphans_due:
                # Settling first: a revocation it finishes leaves nothing to find.
                self._remove_orphans()
        except Exception:
            # The sweep must outlive a bad moment (the database away, say): log, try next time.
            log.exception("the sweep failed; it runs again in %.0f s", self._interval)

    def _remove_orphans(self) -> None:
        assert self._orphan_interval is not None, "called only when orphans are removed"
        swept = remove_orphans(self._deps)
        # Due again only after a pass that got through the listing.
        self._orphans_due = time.monotonic() + self._orphan_interval
        if swept.removed:
            log.info("removed resources no grant needs, of %s", ", ".join(swept.removed))
