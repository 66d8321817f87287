"""Unit tests of brokerctl: pure functions, no broker."""
