"""The embedded AWS emulator behind `serve --sandbox`, the demo and the tests (needs moto)."""

from broker.sandbox.emulator import Credentials, Emulator

__all__ = ["Credentials", "Emulator"]
