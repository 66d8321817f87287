"""The access policy in force (the PolicySource port), swapped whole when its file is reloaded."""

import threading

from broker.domain.authorization import AccessPolicy


class PolicyHolder:
    """The access policy in force (BROKER_POLICY_FILE). A reload (SIGHUP) swaps it whole; a
    request reads it once and decides everything with that one policy."""

    def __init__(self, policy: AccessPolicy) -> None:
        self._lock = threading.Lock()
        self._policy = policy

    def current(self) -> AccessPolicy:
        with self._lock:
            return self._policy

    def replace(self, policy: AccessPolicy) -> None:
        with self._lock:
            self._policy = policy
