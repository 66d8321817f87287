"""Configuration in force, swapped whole when it is reloaded: the access policy (the
PolicySource port), the accounts (the AccountsSource port) and the permissions boundaries read
in them (the BoundariesSource port)."""

import threading
from typing import Generic, TypeVar

from broker.domain.accounts import Accounts
from broker.domain.authorization import AccessPolicy
from broker.domain.boundary import Boundaries

T = TypeVar("T")


class Holder(Generic[T]):
    """What a file configures, in force. A reload (SIGHUP) swaps it whole; a request reads it
    once and decides everything with that one version."""

    def __init__(self, value: T) -> None:
        self._lock = threading.Lock()
        self._value = value

    def current(self) -> T:
        with self._lock:
            return self._value

    def replace(self, value: T) -> None:
        with self._lock:
            self._value = value


# BROKER_POLICY_FILE's access policy; BROKER_ACCOUNTS_FILE's accounts and regions.
PolicyHolder = Holder[AccessPolicy]
AccountsHolder = Holder[Accounts]
# The boundary of each account, read at start and on SIGHUP.
BoundariesHolder = Holder[Boundaries]
