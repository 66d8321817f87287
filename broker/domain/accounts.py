"""The AWS accounts and regions the broker serves (BROKER_ACCOUNTS_FILE), and how a request's
`account` and `region` name one of them.

Without the file the broker serves one place: its own account (home) in its configured region.
A spoke account is reached by assuming its role; the home account with the broker's own
credentials.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from broker.domain.errors import FieldViolation, InvalidRequest
from broker.domain.places import HOME_ACCOUNT, Place, PlaceFilter

HOME_NAME = "home"


@dataclass(frozen=True)
class Account:
    """One account: its id ("" when the home account's is not configured), the name requests and
    policy rules may use for it, its regions (the first is the default), and for a spoke the role
    the broker assumes there."""

    id: str
    name: str
    regions: tuple[str, ...]
    role_arn: str = ""
    # Never shown: it is not a secret, but what it guards against is guessing it.
    external_id: str = field(default="", repr=False)
    # A stand-in for an account the broker recorded and the accounts file no longer names.
    removed: bool = False

    @property
    def is_home(self) -> bool:
        return not self.role_arn and not self.removed

    @property
    def key(self) -> str:
        """How records name it: HOME_ACCOUNT for the home account, else its id."""
        return HOME_ACCOUNT if self.is_home else self.id

    @property
    def aliases(self) -> frozenset[str]:
        """What a request or a policy rule may call it: its name and, when known, its id (and
        "home", always, for the home account: a spoke may not take that name)."""
        home = (HOME_NAME,) if self.is_home else ()
        return frozenset(a for a in (self.id, self.name, *home) if a)

    def places(self) -> list[Place]:
        return [Place(self.key, region) for region in self.regions]

    @property
    def label(self) -> str:
        """Its name, and its id when known: "prod (222222222222)"."""
        return f"{self.name} ({self.id})" if self.id and self.id != self.name else self.name

    def describe(self) -> str:
        return f"{self.label}: {', '.join(self.regions)}"


@dataclass(frozen=True)
class Accounts:
    home: Account
    spokes: tuple[Account, ...] = ()

    @classmethod
    def single(cls, region: str) -> "Accounts":
        """The broker as it is without an accounts file: its own account, one region."""
        return cls(Account(id="", name=HOME_NAME, regions=(region,)))

    @property
    def all(self) -> tuple[Account, ...]:
        return (self.home, *self.spokes)

    def places(self) -> list[Place]:
        """Every configured account and region: what the sweeps visit."""
        return [place for account in self.all for place in account.places()]

    def unknown(self, aliases: Iterable[str]) -> list[str]:
        """Those of `aliases` that name no configured account (by id or name), sorted."""
        known = {alias for account in self.all for alias in account.aliases}
        return sorted(set(aliases) - known)

    def account_of(self, place: Place) -> Account:
        """The account of a place the broker has recorded; one since removed from the accounts
        file is named by its id alone, with no regions (a rule naming accounts refuses it)."""
        for account in self.all:
            if account.key == place.account:
                return account
        return Account(id=place.account, name=place.account, regions=(), removed=True)

    def place_for(self, account: str, region: str) -> Place:
        """The place a request names: `account` by id or name ("" the home account) and
        `region` ("" its first). InvalidRequest naming what is configured when either is not."""
        chosen = self._named(account)
        if chosen is None:
            raise _invalid("account", f"account {account!r} is not configured", self)
        if region and region not in chosen.regions:
            where = f"region {region!r} is not configured for account {chosen.name}"
            raise _invalid("region", where, self)
        return Place(chosen.key, region or chosen.regions[0])

    def filter_for(self, account: str, region: str) -> PlaceFilter:
        """The places a listing's `account` and `region` name ("" for any); InvalidRequest
        naming what is configured when either names nothing configured."""
        chosen = self._named(account) if account else None
        if account and chosen is None:
            raise _invalid("account", f"account {account!r} is not configured", self)
        regions = chosen.regions if chosen else {r for a in self.all for r in a.regions}
        if region and region not in regions:
            raise _invalid("region", f"region {region!r} is not configured", self)
        return PlaceFilter(chosen.key if chosen else None, region or None)

    def _named(self, account: str) -> Account | None:
        if not account:
            return self.home
        return next((a for a in self.all if account in a.aliases), None)


def _invalid(field: str, problem: str, accounts: Accounts) -> InvalidRequest:
    configured = "; ".join(a.describe() for a in accounts.all)
    return InvalidRequest([FieldViolation(field, f"{problem} (configured: {configured})")])
