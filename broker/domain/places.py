"""Where an instance lives: an AWS account and a region.

An instance id names an instance only within its account and region, so everything the broker
keeps per instance (its grants, its record, its lock, its role and profile) is kept per
InstanceRef. The broker's own account (its credentials') is HOME_ACCOUNT in records, whether or
not the accounts file gives its id, so that records written before the file named it stay its.
"""

from dataclasses import dataclass

# The account key of the broker's own account, the one its credentials belong to.
HOME_ACCOUNT = ""


@dataclass(frozen=True, order=True)
class Place:
    """An AWS account, by id (HOME_ACCOUNT for the broker's own), and one of its regions."""

    account: str
    region: str

    @property
    def is_home_account(self) -> bool:
        return self.account == HOME_ACCOUNT

    def __str__(self) -> str:
        return f"{self.account or 'home'}/{self.region}"


@dataclass(frozen=True, order=True)
class InstanceRef:
    """One instance: its id where it lives."""

    place: Place
    instance_id: str

    @property
    def key(self) -> str:
        """A name unique among every configured account's and region's instances (for locks)."""
        return f"{self.place}/{self.instance_id}"

    def __str__(self) -> str:
        return (
            self.instance_id
            if self.place.is_home_account
            else f"{self.instance_id} in {self.place}"
        )


@dataclass(frozen=True)
class PlaceFilter:
    """Which places a listing covers: an account (by key) and a region, None for any."""

    account: str | None = None
    region: str | None = None

    def holds(self, place: Place) -> bool:
        return self.account in (None, place.account) and self.region in (None, place.region)


# Every place: a listing without an account or region.
ANY_PLACE = PlaceFilter()
