"""Fault injection between the broker and the AWS emulator, and checks of what it leaves behind."""

from tests.faults.proxy import Exchange, FaultProxy, Faults

__all__ = ["Exchange", "FaultProxy", "Faults"]
