"""The ports the service layer needs; adapters implement them, unit tests fake them."""

from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from broker.domain.access import GrantState
from broker.domain.accounts import Accounts
from broker.domain.audit import AuditEvent, NewAuditEvent
from broker.domain.authorization import AccessPolicy
from broker.domain.boundary import Boundaries
from broker.domain.convergence import AssociationInfo, ProfileInfo, RoleInfo
from broker.domain.drift import ListedRole
from broker.domain.grants import Grant, InstanceResources
from broker.domain.places import ANY_PLACE, InstanceRef, Place, PlaceFilter
from broker.domain.quotas import AccountUsage

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    # Opaque position after the last item; None when there is nothing more.
    next_cursor: int | None


@dataclass(frozen=True)
class StateCount:
    """The grants in one state: how many, and when the one longest there entered it."""

    count: int
    oldest_since: datetime


@dataclass(frozen=True)
class GrantFilter:
    instance_id: str = ""
    # Where the instances live.
    places: PlaceFilter = ANY_PLACE
    bucket: str = ""
    state: GrantState | None = None
    requested_by: str = ""


@dataclass(frozen=True)
class AuditFilter:
    instance_id: str = ""
    grant_id: str = ""
    # Only events of these actions; empty: every action.
    actions: frozenset[str] = frozenset()
    # Only events about instances of these places (an account's key, a region).
    places: PlaceFilter = ANY_PLACE


@dataclass(frozen=True)
class IdempotencyRecord:
    """What a caller's idempotency key was first used for."""

    key: str
    operation: str
    fingerprint: str
    grant_id: str
    created_at: datetime


@dataclass(frozen=True)
class InstanceRecord:
    """The broker's record of what AWS holds for an instance, as of its last recorded step."""

    instance: InstanceRef
    resources: InstanceResources
    policy_document: str
    updated_at: datetime
    role_in_profile: bool = False

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id


class GrantStore(Protocol):
    def add(self, grant: Grant) -> None: ...
    def save(self, grant: Grant) -> None: ...
    def get(self, grant_id: str) -> Grant | None: ...
    def for_instance(self, instance: InstanceRef) -> list[Grant]:
        """The instance's grants that are desired or settling (pending, active, revoking)."""
        ...

    def expired(self, now: datetime) -> list[Grant]:
        """Pending or active grants whose expiry is at or before `now`, for the sweep."""
        ...

    def lapsed_requests(self, now: datetime) -> list[Grant]:
        """Requests still awaiting approval whose time to be answered has passed."""
        ...

    def settling_instances(self) -> list[InstanceRef]:
        """Instances with a grant still pending or revoking, for the reconciler."""
        ...

    def live_instances(self) -> list[InstanceRef]:
        """Instances with a pending, active or revoking grant: those the broker manages."""
        ...

    def list(self, where: GrantFilter, after: int | None, limit: int) -> Page[Grant]: ...
    def count_by_state(self) -> dict[GrantState, StateCount]:
        """How many grants are in each state, and since when the longest there has been; a
        state no grant is in is left out."""
        ...


class AuditLog(Protocol):
    def append(self, event: NewAuditEvent) -> None:
        """Appends in commit order: an event id is never visible before a smaller one."""
        ...

    def last_event_id(self) -> int:
        """The id of the newest event, 0 when there is none."""
        ...

    def list(self, where: AuditFilter, after: int | None, limit: int) -> Page[AuditEvent]: ...
    def count(self, where: AuditFilter, after: int) -> int:
        """How many matching events come after event `after`."""
        ...


@dataclass(frozen=True)
class DeliveryState:
    """How far a notification destination has been sent the audit trail, and how its last
    attempt went."""

    destination: str
    # Every notified event up to this id has been delivered.
    delivered_through: int
    # Failed attempts in a row at the next event, and what the last one said.
    failures: int = 0
    last_error: str = ""
    last_attempt_at: datetime | None = None


class Deliveries(Protocol):
    def get(self, destination: str) -> DeliveryState | None: ...
    def save(self, state: DeliveryState) -> None: ...


class WebhookPoster(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        """POSTs the body; raises DeliveryFailed saying why unless the answer is 2xx."""
        ...


class IdempotencyKeys(Protocol):
    def get(self, operation: str, key: str) -> IdempotencyRecord | None: ...
    def add(self, record: IdempotencyRecord) -> None:
        """Raises IdempotencyConflict when the key is taken, even by a concurrent first use."""
        ...


class InstanceRecords(Protocol):
    def get(self, instance: InstanceRef) -> InstanceRecord | None: ...
    def save(self, record: InstanceRecord) -> None: ...
    def missing_since(self, instance: InstanceRef) -> datetime | None:
        """When EC2 was first found not to know the instance (where it was granted), if it
        has not known it since."""
        ...

    def note_missing(self, instance: InstanceRef, since: datetime) -> None:
        """EC2 does not know the instance, since `since` (kept if noted already)."""
        ...

    def note_found(self, instance: InstanceRef) -> None:
        """EC2 knows the instance (again)."""
        ...

    def noted_missing(self) -> set[InstanceRef]:
        """Every instance noted missing and not found since."""
        ...


class UnitOfWork(Protocol):
    """One database transaction over all stores; leaving without commit() rolls back."""

    grants: GrantStore
    audit: AuditLog
    idempotency: IdempotencyKeys
    instances: InstanceRecords
    deliveries: Deliveries

    def __enter__(self) -> "UnitOfWork": ...
    def __exit__(self, *exc_info: object) -> None: ...
    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work. A read-only one never waits for a writer, nor makes one wait
        (on SQLite a writing unit of work holds the database's write lock from its start), and
        refuses to commit: for reads that decide nothing they then write."""
        ...


class Iam(Protocol):
    """IAM calls on the broker's roles and profiles; missing resources read as None."""

    def get_role(self, name: str) -> RoleInfo | None:
        """The role, with its trust policy."""
        ...

    def create_role(
        self,
        name: str,
        path: str,
        trust_policy: str,
        tags: dict[str, str],
        permissions_boundary: str = "",
    ) -> RoleInfo:
        """The new role; or, when the name is taken, the role that has it, whose `managed`
        says whether it is the broker's (a retry's, another replica's) or someone else's."""
        ...

    def update_trust_policy(self, role_name: str, document: str) -> None: ...
    def put_role_boundary(self, role_name: str, policy_arn: str) -> None:
        """Sets (or replaces) the role's permissions boundary."""
        ...

    def delete_role(self, name: str) -> None: ...
    def list_inline_policies(self, role_name: str) -> list[str]:
        """The names of the role's inline policies (empty when the role is missing)."""
        ...

    def list_attached_policies(self, role_name: str) -> list[str]:
        """The ARNs of the managed policies attached to the role (empty when it is missing)."""
        ...

    def detach_policy(self, role_name: str, policy_arn: str) -> None: ...
    def profiles_holding(self, role_name: str) -> list[str]:
        """The names of the instance profiles that hold the role."""
        ...

    def get_role_policy(self, role_name: str, policy_name: str) -> dict[str, Any] | None: ...
    def put_role_policy(
        self, role_name: str, policy_name: str, document: str, *, after_boundary: bool = False
    ) -> None:
        """`after_boundary`: the role's boundary was put just before, and IAM may refuse the
        write (AccessDenied) until it has propagated: that is waited out."""
        ...

    def delete_role_policy(self, role_name: str, policy_name: str) -> None: ...
    def get_instance_profile(self, name: str) -> ProfileInfo | None: ...
    def create_instance_profile(self, name: str, path: str, tags: dict[str, str]) -> ProfileInfo:
        """The new profile; or, when the name is taken, the one that has it (see create_role)."""
        ...

    def add_role_to_instance_profile(self, profile_name: str, role_name: str) -> None: ...
    def remove_role_from_instance_profile(self, profile_name: str, role_name: str) -> None: ...
    def delete_instance_profile(self, name: str) -> None: ...
    def managed_instances(self, path: str) -> dict[str, str]:
        """Instances with a role or instance profile the broker created on exactly `path`
        (named for the instance and tagged managed-by=accessbroker, and with its instance id),
        with the region their tags name ("" when they name none: made before regions were)."""
        ...

    def account_usage(self) -> AccountUsage:
        """How many roles and instance profiles the account holds, and its quotas for them."""
        ...

    def list_broker_roles(self) -> dict[str, ListedRole]:
        """Every role of the account named as the broker names roles, on any path, by name:
        read in pages of the account's listing, not role by role."""
        ...


@dataclass(frozen=True)
class InstanceInfo:
    """An EC2 instance that exists (neither shutting down nor terminated)."""

    instance_id: str
    tags: dict[str, str]
    # The ARN of the instance profile associated with it, "" for none.
    profile_arn: str = ""


@dataclass(frozen=True)
class InstancesSeen:
    """What EC2 shows of many instances at once, read in batches."""

    # Neither shutting down nor terminated.
    existing: frozenset[str]
    # Shutting down or terminated. An id in neither set is one EC2 does not know.
    gone: frozenset[str]
    # The current (associating or associated) association of each instance that has one.
    associations: Mapping[str, AssociationInfo]


class Ec2(Protocol):
    def find_instance(self, instance_id: str) -> InstanceInfo | None:
        """The instance, or None when it does not exist or is shutting down or terminated."""
        ...

    def is_terminated(self, instance_id: str) -> bool:
        """Whether EC2 shows the instance shutting down or terminated; False for an id EC2 does
        not know at all (which a wrong region or account would also explain)."""
        ...

    def get_association(self, instance_id: str) -> AssociationInfo | None:
        """The instance's current (associating or associated) profile association."""
        ...

    def associate(self, instance_id: str, profile_name: str) -> AssociationInfo:
        """Associates the profile, waiting out IAM's propagation to EC2."""
        ...

    def disassociate(self, association_id: str) -> None: ...
    def instances_holding(self, profile_arn: str) -> set[str]:
        """The instances the profile is associated with (associating or associated)."""
        ...

    def describe_many(self, instance_ids: Collection[str]) -> InstancesSeen:
        """The instances and their associations, in batches of ids rather than one by one."""
        ...


class AwsAccounts(Protocol):
    """The AWS of every configured account and region: a spoke account through the role the
    broker assumes there. A call in an account that cannot be reached raises AwsUnavailable
    naming it; the other accounts are unaffected."""

    def iam(self, account: str) -> Iam:
        """The account's IAM (one for all its regions), by its key (HOME_ACCOUNT: the home)."""
        ...

    def ec2(self, place: Place) -> Ec2: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class IdGenerator(Protocol):
    def new_grant_id(self) -> str: ...


class InstanceLocks(Protocol):
    """Serializes convergence per instance; different instances proceed in parallel."""

    def hold(self, instance_id: str) -> AbstractContextManager[None]: ...


class PolicySource(Protocol):
    """The access policy in force; a reload swaps it whole, so a request reads it once."""

    def current(self) -> AccessPolicy: ...


class AccountsSource(Protocol):
    """The accounts and regions in force; a reload swaps them whole."""

    def current(self) -> Accounts: ...


class BoundariesSource(Protocol):
    """The permissions boundaries read in the accounts served; a reload reads them anew."""

    def current(self) -> Boundaries: ...


class Span(Protocol):
    """A traced unit of the broker's work, open while its block runs."""

    def set_attribute(self, key: str, value: str) -> None:
        """Names something learnt while it ran (how a convergence ended, say)."""
        ...


class Telemetry(Protocol):
    """What the broker measures of its own work, for its metrics and traces."""

    def span(self, name: str, attributes: Mapping[str, str]) -> AbstractContextManager[Span]:
        """Traces the block as `name`, a child of the span current where it runs (the RPC's,
        say). A failure that leaves the block marks the span failed."""
        ...

    def convergence_took(self, seconds: float, outcome: str) -> None:
        """A convergence of one instance ended: converged, postponed or failed."""
        ...

    def authorization_decided(self, command: str, *, allowed: bool) -> None:
        """The access policy let a caller run a command (of this name), or refused it."""
        ...

    def account_usage_read(self, account: str, usage: AccountUsage) -> None:
        """An account's role and instance profile usage, as just read (for its metrics)."""
        ...


class NoTelemetry:
    """Measures nothing: where no metrics are kept (the unit tests, a one-off command)."""

    def span(self, name: str, attributes: Mapping[str, str]) -> AbstractContextManager[Span]:
        return nullcontext(_NO_SPAN)

    def convergence_took(self, seconds: float, outcome: str) -> None:
        pass

    def authorization_decided(self, command: str, *, allowed: bool) -> None:
        pass

    def account_usage_read(self, account: str, usage: AccountUsage) -> None:
        pass


class _UntracedSpan:
    def set_attribute(self, key: str, value: str) -> None:
        pass


_NO_SPAN = _UntracedSpan()
