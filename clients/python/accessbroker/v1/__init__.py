"""Stubs generated from proto/accessbroker/v1 (by `make proto`; never committed)."""
