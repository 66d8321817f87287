"""Each account's IAM usage, as the quota headroom check needs it: read from AWS by the sweep
(and by an admission when no fresh reading is at hand), and counted on by every admission of a
new role since, so that a first grant costs no read of its own.

The count is this process's: other replicas' roles show at the next reading, and roles removed
since count until then (both err towards refusing); a role admitted but not yet made when a
reading is taken counts once it exists, a window of one convergence. A headroom (5% of the
quota by default) is meant to absorb all three.
"""

import threading
import time
from dataclasses import replace

from broker.domain.accounts import Account
from broker.domain.errors import AwsQuotaExceeded
from broker.domain.quotas import AccountUsage, quota_refusal
from broker.service.ports import Iam, Telemetry

# How long a reading stands in for AWS: the sweep reads every account as often as it looks
# for drift (every 300 s unless told), so a reading this old means it has not lately.
MAX_READING_AGE_SECONDS = 600.0


class AccountUsages:
    def __init__(self, telemetry: Telemetry, headroom: float) -> None:
        self._telemetry, self._headroom = telemetry, headroom
        self._lock = threading.Lock()
        # By account key: the usage as read and counted on since, and when it was read.
        self._known: dict[str, tuple[AccountUsage, float]] = {}

    def read(self, account: Account, iam: Iam) -> AccountUsage:
        """Reads the account's usage from AWS; the admissions count on from it."""
        usage = iam.account_usage()
        self._telemetry.account_usage_read(account.name, usage)
        with self._lock:
            self._known[account.key] = (usage, time.monotonic())
        return usage

    def admit_new_role(self, account: Account, iam: Iam, *, counted: bool) -> None:
        """Refuses (AwsQuotaExceeded naming the account) a new role and instance profile that
        would eat into the headroom; `counted`: the admission goes ahead, so they count."""
        if not self._is_fresh(account.key):
            self.read(account, iam)
        # Decided and counted at once: concurrent admissions (of other instances) each see the
        # ones counted before them.
        with self._lock:
            usage, read_at = self._known[account.key]
            refusal = quota_refusal(usage, self._headroom, account.label)
            if refusal is not None:
                raise AwsQuotaExceeded(refusal)
            if counted:
                more = replace(
                    usage, roles=usage.roles + 1, instance_profiles=usage.instance_profiles + 1
                )
                self._known[account.key] = (more, read_at)

    def _is_fresh(self, key: str) -> bool:
        with self._lock:
            known = self._known.get(key)
        return known is not None and time.monotonic() - known[1] <= MAX_READING_AGE_SECONDS
