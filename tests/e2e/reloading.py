"""Reloading the running broker's tokens and policy files (SIGHUP); tests wait for the effect
with tests.waiting."""

import signal

from tests.e2e.broker_process import BrokerProcess


def hang_up(broker: BrokerProcess) -> None:
    """Asks the broker to re-read its files; it does so in the background."""
    assert broker.process is not None, "start() the broker first"
    broker.process.send_signal(signal.SIGHUP)
