"""A count of every AWS call the adapters make (each attempt, retries included), by service,
action and outcome, for the metrics."""

import threading
from collections import Counter

from broker.adapters.aws.retry import Fault, classify

SUCCESS = "success"
CLIENT_ERROR = "client_error"
_OUTCOMES = {
    Fault.THROTTLING: "throttled",
    Fault.SERVER_ERROR: "server_error",
    Fault.CONNECTION: "connection_error",
}


def outcome_of(error: BaseException | None) -> str:
    """success, throttled, server_error, connection_error, or client_error (AWS refused the
    request itself, "not found" answers included)."""
    if error is None:
        return SUCCESS
    fault = classify(error)
    return CLIENT_ERROR if fault is None else _OUTCOMES.get(fault, CLIENT_ERROR)


class CallTally:
    """Thread-safe; one is shared by the broker's BotoIam and BotoEc2."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str, str]] = Counter()

    def record(self, service: str, action: str, outcome: str) -> None:
        """One attempt of `action`, ended as outcome_of() says."""
        with self._lock:
            self._calls[service, action, outcome] += 1

    def counts(self) -> dict[tuple[str, str, str], int]:
        """Calls so far per (service, action, outcome)."""
        with self._lock:
            return dict(self._calls)
