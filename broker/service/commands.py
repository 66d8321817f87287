"""The commands the broker takes: one per RPC, and one per chore of the background sweep.

A command is what a caller asked, as it asked it, with who asks (`actor`) and, where a retry
must be safe, an idempotency key. `validate()` is the pipeline's first step: it names every bad
field at once and changes nothing. A command's type parameter is what handling it answers.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Generic, Self, TypeVar

from broker.domain.access import Access, GrantState
from broker.domain.accounts import Accounts
from broker.domain.audit import ANONYMOUS_ACTOR, SYSTEM_ACTOR, AuditEvent
from broker.domain.authorization import Decision, identity_problems
from broker.domain.drift import Drift
from broker.domain.errors import FieldViolation, InvalidRequest
from broker.domain.grants import Grant, GrantLimits, GrantRequest, InstanceResources
from broker.domain.notifications import Destination
from broker.domain.places import ANY_PLACE, InstanceRef, Place, PlaceFilter
from broker.domain.validation import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_REASON_CHARS,
    bucket_problems,
    free_text_problems,
    grant_id_problems,
    instance_id_problems,
    require,
    ttl_problems,
    validate_grant_request,
)
from broker.service.ports import DeliveryState, Page

# Covariant: a GrantAccess is a Command[object] too, for code that only routes commands.
Answer_co = TypeVar("Answer_co", covariant=True)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_TTL_REQUIRED = "must be set: how long from now the grant should last"


@dataclass(frozen=True, kw_only=True)
class Command(Generic[Answer_co]):
    actor: str = ANONYMOUS_ACTOR
    # The delegate that sent the command on the actor's behalf ("" when the actor called).
    via: str = ""

    def validate(self, limits: GrantLimits) -> None:
        """Raises InvalidRequest naming every bad field; most commands have none to check."""

    def located(self, accounts: Accounts) -> Self:
        """The command with the account and region it names resolved against the configured
        ones (InvalidRequest naming them when it names others); most name none."""
        return self


@dataclass(frozen=True, kw_only=True)
class AtPlace:
    """Where the instance a command is about lives, as the caller named it: `account` by id or
    name and `region`, "" for the home account and its first region. The pipeline resolves
    them into `place` (see Command.located)."""

    account: str = ""
    region: str = ""
    place: Place | None = None

    def located(self, accounts: Accounts) -> Self:
        return replace(self, place=accounts.place_for(self.account, self.region))

    @property
    def where(self) -> Place:
        if self.place is None:  # the pipeline locates every command before it reaches here
            raise InvalidRequest([FieldViolation("account", "the command was not located")])
        return self.place


@dataclass(frozen=True, kw_only=True)
class InPlaces:
    """A listing's `account` and `region`, "" for any; resolved into `places` by the pipeline."""

    account: str = ""
    region: str = ""
    places: PlaceFilter = ANY_PLACE

    def located(self, accounts: Accounts) -> Self:
        return replace(self, places=accounts.filter_for(self.account, self.region))


# ---------------------------------------------------------------------------------------------
# What commands answer.


@dataclass(frozen=True)
class GrantResult:
    grant: Grant
    # The instance's whole policy once the grant is carried (for a dry run: would be).
    policy_document: str
    # A dry run's steps, in words.
    planned_changes: tuple[str, ...] = ()
    # Set when a broader live grant already gave what was asked: `grant` is that grant.
    covered_by: str = ""
    # What the request left as it was, and why: "alice already approved this request".
    notice: str = ""


@dataclass(frozen=True)
class InstanceAccess:
    instance: InstanceRef
    resources: InstanceResources
    policy_document: str
    grants: list[Grant]


@dataclass(frozen=True)
class Feed:
    """An audit feed: the event id it starts after, and its events from there on. `follow`
    takes `idle`, which waits a while once the feed has caught up and says whether to go on."""

    start: int
    follow: Callable[[Callable[[], bool]], Iterator[AuditEvent]]


@dataclass(frozen=True)
class DriftFinding:
    drift: Drift
    # The broker changed AWS so that this difference is gone.
    repaired: bool


# ---------------------------------------------------------------------------------------------
# Commands that change grants.


@dataclass(frozen=True, kw_only=True)
class GrantAccess(AtPlace, Command[GrantResult]):
    instance_id: str
    bucket: str
    access: Access | None
    prefix: str = ""
    ttl: timedelta | None = None
    reason: str = ""
    idempotency_key: str = ""
    dry_run: bool = False

    def validate(self, limits: GrantLimits) -> None:
        self.request(limits)

    def request(self, limits: GrantLimits) -> GrantRequest:
        """The request with the server's default ttl applied, or one InvalidRequest naming every
        bad field, the idempotency key's too."""
        try:
            request = validate_grant_request(
                instance_id=self.instance_id,
                bucket=self.bucket,
                prefix=self.prefix,
                access=self.access,
                ttl=limits.ttl_for(self.ttl),
                reason=self.reason,
                requested_by=self.actor,
                place=self.where,
                max_ttl=limits.max_ttl,
            )
        except InvalidRequest as invalid:
            bad_key = [FieldViolation("idempotency_key", p) for p in key_problems(self)]
            raise InvalidRequest([*invalid.violations, *bad_key]) from None
        require({"idempotency_key": key_problems(self)})
        return request


@dataclass(frozen=True, kw_only=True)
class RevokeAccess(Command[GrantResult]):
    grant_id: str
    reason: str = ""
    idempotency_key: str = ""

    def validate(self, limits: GrantLimits) -> None:
        require(
            {
                "grant_id": grant_id_problems(self.grant_id),
                "reason": free_text_problems(self.reason, MAX_REASON_CHARS),
                "idempotency_key": key_problems(self),
            }
        )


@dataclass(frozen=True, kw_only=True)
class ExtendGrant(Command[Grant]):
    """Make a live grant last at least `ttl` from now; never shortens it."""

    grant_id: str
    ttl: timedelta | None
    reason: str = ""

    def validate(self, limits: GrantLimits) -> None:
        require(
            {
                "grant_id": grant_id_problems(self.grant_id),
                "ttl": [_TTL_REQUIRED]
                if self.ttl is None
                else ttl_problems(self.ttl, limits.max_ttl),
                "reason": free_text_problems(self.reason, MAX_REASON_CHARS),
            }
        )

    @property
    def extension(self) -> timedelta:
        if self.ttl is None:  # refused by validate(); this narrows the type, and survives -O
            raise InvalidRequest([FieldViolation("ttl", _TTL_REQUIRED)])
        return self.ttl


def key_problems(command: GrantAccess | RevokeAccess) -> list[str]:
    return free_text_problems(command.idempotency_key, MAX_IDEMPOTENCY_KEY_CHARS)


@dataclass(frozen=True, kw_only=True)
class ApproveGrant(Command[GrantResult]):
    """An approver's approval of a request; the last one needed makes it a grant, carried out
    at once. `ttl`, if set, shortens the ttl the grant gets."""

    grant_id: str
    reason: str = ""
    ttl: timedelta | None = None

    def validate(self, limits: GrantLimits) -> None:
        require(
            {
                "grant_id": grant_id_problems(self.grant_id),
                "reason": free_text_problems(self.reason, MAX_REASON_CHARS),
                "ttl": [] if self.ttl is None else ttl_problems(self.ttl, limits.max_ttl),
            }
        )


@dataclass(frozen=True, kw_only=True)
class DenyGrant(Command[Grant]):
    """An approver's refusal of a request: it ends DENIED."""

    grant_id: str
    reason: str = ""

    def validate(self, limits: GrantLimits) -> None:
        require(
            {
                "grant_id": grant_id_problems(self.grant_id),
                "reason": free_text_problems(self.reason, MAX_REASON_CHARS),
            }
        )


# ---------------------------------------------------------------------------------------------
# Commands that read.


@dataclass(frozen=True, kw_only=True)
class GetGrant(Command[Grant]):
    grant_id: str

    def validate(self, limits: GrantLimits) -> None:
        require({"grant_id": grant_id_problems(self.grant_id)})


@dataclass(frozen=True, kw_only=True)
class ListGrants(InPlaces, Command[Page[Grant]]):
    instance_id: str = ""
    bucket: str = ""
    state: GrantState | None = None
    # Only the requests waiting for the caller's approval (whoever asked).
    awaiting_my_approval: bool = False
    page_size: int = 0
    # Where the previous page ended (its next_cursor); None for the first page.
    after: int | None = None

    def validate(self, limits: GrantLimits) -> None:
        require(
            {
                "instance_id": _optional(instance_id_problems, self.instance_id),
                "bucket": _optional(bucket_problems, self.bucket),
                "page_size": page_size_problems(self.page_size),
            }
        )


@dataclass(frozen=True, kw_only=True)
class DescribeInstanceAccess(AtPlace, Command[InstanceAccess]):
    instance_id: str

    @property
    def instance(self) -> InstanceRef:
        return InstanceRef(self.where, self.instance_id)

    def validate(self, limits: GrantLimits) -> None:
        require({"instance_id": instance_id_problems(self.instance_id)})


@dataclass(frozen=True, kw_only=True)
class ListAuditEvents(InPlaces, Command[Page[AuditEvent]]):
    instance_id: str = ""
    grant_id: str = ""
    page_size: int = 0
    after: int | None = None

    def validate(self, limits: GrantLimits) -> None:
        require(
            {
                "instance_id": _optional(instance_id_problems, self.instance_id),
                "grant_id": _optional(grant_id_problems, self.grant_id),
                "page_size": page_size_problems(self.page_size),
            }
        )


@dataclass(frozen=True, kw_only=True)
class WatchAuditEvents(InPlaces, Command[Feed]):
    """The audit trail as an endless feed, for notifiers and SIEM forwarders."""

    instance_id: str = ""
    # Start after this event id; None: only events yet to come.
    after: int | None = None

    def validate(self, limits: GrantLimits) -> None:
        require(
            {
                "instance_id": _optional(instance_id_problems, self.instance_id),
                "after_event_id": [] if self.after is None or self.after >= 0 else [_NEGATIVE],
            }
        )


@dataclass(frozen=True, kw_only=True)
class ExplainAccess(AtPlace, Command[Decision]):
    """Would `identity` be allowed this grant now, and why?"""

    identity: str
    instance_id: str
    bucket: str
    access: Access | None
    prefix: str = ""
    ttl: timedelta | None = None

    def validate(self, limits: GrantLimits) -> None:
        self.request(limits)

    def request(self, limits: GrantLimits) -> GrantRequest:
        unknown_identity = [FieldViolation("identity", p) for p in identity_problems(self.identity)]
        try:
            request = validate_grant_request(
                instance_id=self.instance_id,
                bucket=self.bucket,
                prefix=self.prefix,
                access=self.access,
                ttl=self.ttl,
                reason="",
                requested_by=self.identity,
                place=self.where,
                max_ttl=limits.max_ttl,
            )
        except InvalidRequest as invalid:
            raise InvalidRequest([*unknown_identity, *invalid.violations]) from None
        if unknown_identity:
            raise InvalidRequest(unknown_identity)
        return request


# ---------------------------------------------------------------------------------------------
# Commands that repair: drift on demand, and the background sweep's chores (the system's own).


@dataclass(frozen=True, kw_only=True)
class Reconcile(InPlaces, Command[list[DriftFinding]]):
    """Find drift on one instance ("" for every instance with a live grant, in the places named)
    and, unless a dry run, repair it. The instance lives in the account and region named (""
    the home account and its first region)."""

    instance_id: str = ""
    dry_run: bool = False
    # Set by the pipeline when an instance is named: where it lives.
    instance: InstanceRef | None = None

    def located(self, accounts: Accounts) -> Self:
        if not self.instance_id:
            return super().located(accounts)
        place = accounts.place_for(self.account, self.region)
        return replace(self, instance=InstanceRef(place, self.instance_id))

    def validate(self, limits: GrantLimits) -> None:
        require({"instance_id": _optional(instance_id_problems, self.instance_id)})


@dataclass(frozen=True, kw_only=True)
class ExpireGrants(Command[list[InstanceRef]]):
    """End the grants past their expiry; answers the instances that could not be done yet."""

    actor: str = SYSTEM_ACTOR


@dataclass(frozen=True, kw_only=True)
class FinishSettling(Command[list[InstanceRef]]):
    """Finish every convergence interrupted or postponed; answers the instances left unfinished."""

    actor: str = SYSTEM_ACTOR


@dataclass(frozen=True)
class OrphanSweep:
    removed: list[InstanceRef]
    # Could not be torn down yet (AWS unavailable, say); the next pass tries again.
    unfinished: list[InstanceRef]


@dataclass(frozen=True, kw_only=True)
class RemoveOrphans(Command[OrphanSweep]):
    """Tear down the broker's roles and profiles that no grant needs."""

    actor: str = SYSTEM_ACTOR


@dataclass(frozen=True, kw_only=True)
class MeasureQuotas(Command[list[str]]):
    """Read each account's role and instance profile usage, for the metrics; answers the
    accounts that could not be read now."""

    actor: str = SYSTEM_ACTOR


@dataclass(frozen=True)
class DeliveryReport:
    """A pass of deliveries to one destination: how many it took, how many still wait (after a
    failure), and where it now stands."""

    delivered: int
    pending: int
    state: DeliveryState


@dataclass(frozen=True, kw_only=True)
class DeliverNotifications(Command[DeliveryReport]):
    """Send one destination (by its key) the notified events it has not taken yet."""

    destination: str
    actor: str = SYSTEM_ACTOR


@dataclass(frozen=True, kw_only=True)
class TrackDestinations(Command[None]):
    """Start recording how far each configured destination has been sent, from the newest
    event, for those seen for the first time: before the broker serves, so that a destination
    hears of everything from when it was configured."""

    actor: str = SYSTEM_ACTOR


@dataclass(frozen=True)
class DestinationStatus:
    destination: Destination
    # None: nothing was ever delivered to it (the broker has not started delivering yet).
    state: DeliveryState | None
    # Notified events it has not taken yet.
    pending: int


@dataclass(frozen=True, kw_only=True)
class ListDeliveries(Command[list[DestinationStatus]]):
    """Each notification destination and how its deliveries stand."""


@dataclass(frozen=True, kw_only=True)
class RepairDrift(Command[list[DriftFinding]]):
    """The sweep's drift pass: every instance with a live grant."""

    actor: str = SYSTEM_ACTOR


_NEGATIVE = "must not be negative"


def page_size_problems(page_size: int) -> list[str]:
    if 0 <= page_size <= MAX_PAGE_SIZE:
        return []
    return [f"must be between 0 (the default, {DEFAULT_PAGE_SIZE}) and {MAX_PAGE_SIZE}"]


def _optional(problems: Callable[[str], list[str]], value: str) -> list[str]:
    """An empty filter is no filter; a given one must be well formed."""
    return problems(value) if value else []
