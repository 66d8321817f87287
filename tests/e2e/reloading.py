"""Reloading the running broker's tokens and policy files (SIGHUP), and waiting for the effect."""

import signal
import time
from collections.abc import Callable

from tests.e2e.broker_process import BrokerProcess


def hang_up(broker: BrokerProcess) -> None:
    """Asks the broker to re-read its files; it does so in the background."""
    assert broker.process is not None, "start() the broker first"
    broker.process.send_signal(signal.SIGHUP)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether `check` comes true within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()
