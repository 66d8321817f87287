"""Hand-written fakes of the service ports: an in-memory database and a small model of AWS."""

import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from broker.adapters.config.policy_holder import AccountsHolder, BoundariesHolder, PolicyHolder
from broker.adapters.locks import ProcessInstanceLocks
from broker.bootstrap import Options, Ports, build_bus
from broker.domain.access import Access, GrantState
from broker.domain.accounts import Accounts
from broker.domain.audit import AuditEvent, NewAuditEvent
from broker.domain.authorization import UNRESTRICTED, AccessPolicy
from broker.domain.boundary import Boundaries
from broker.domain.convergence import AssociationInfo, ProfileInfo, RoleInfo
from broker.domain.drift import ListedRole
from broker.domain.errors import (
    AwsQuotaExceeded,
    AwsRejected,
    AwsUnavailable,
    BrokerError,
    GrantNotFound,
    IdempotencyConflict,
    InstanceNotFound,
    StoreUnavailable,
)
from broker.domain.grants import Grant, GrantScope
from broker.domain.naming import (
    INSTANCE_TAG_KEY,
    NAME_PREFIX,
    REGION_TAG_KEY,
    is_adoptable,
    is_managed,
)
from broker.domain.notifications import DeliveryFailed
from broker.domain.places import ANY_PLACE, InstanceRef, Place, PlaceFilter
from broker.domain.policy import build_policy
from broker.domain.quotas import AccountUsage
from broker.domain.validation import instance_id_problems
from broker.service.commands import Command, GrantAccess, RevokeAccess
from broker.service.convergence import Convergence
from broker.service.messagebus import MessageBus
from broker.service.ports import (
    AuditFilter,
    AuditLog,
    Deliveries,
    DeliveryState,
    GrantFilter,
    GrantStore,
    IdempotencyKeys,
    IdempotencyRecord,
    InstanceInfo,
    InstanceRecord,
    InstanceRecords,
    InstancesSeen,
    Page,
    StateCount,
    Telemetry,
    UnitOfWorkFactory,
    WebhookPoster,
)
from tests.places import HOME, HOME_ACCOUNTS, at_home

ACCOUNT = "123456789012"
START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

# ---------------------------------------------------------------------------------------------
# The database: committed tables, and per unit of work a working copy plus the writes to replay.


@dataclass
class Tables:
    grants: dict[str, tuple[int, Grant]] = field(default_factory=dict)  # grant id -> (seq, grant)
    audit: list[AuditEvent] = field(default_factory=list)
    keys: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    instances: dict[InstanceRef, InstanceRecord] = field(default_factory=dict)
    deliveries: dict[str, DeliveryState] = field(default_factory=dict)
    missing: dict[InstanceRef, datetime] = field(default_factory=dict)
    last_seq: int = 0

    def copy(self) -> "Tables":
        return replace(
            self,
            grants=dict(self.grants),
            audit=list(self.audit),
            keys=dict(self.keys),
            instances=dict(self.instances),
            deliveries=dict(self.deliveries),
            missing=dict(self.missing),
        )

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq


Write = Callable[[Tables], None]
# How long a first use of an idempotency key waits for another unit of work that holds the key
# (SQLite's busy timeout in the broker); a test that deadlocks then fails instead of hanging.
KEY_WAIT_SECONDS = 30
T = TypeVar("T")
R = TypeVar("R")


def _page(items: list[tuple[int, T]], after: int | None, limit: int) -> Page[T]:
    if limit < 1:
        raise ValueError(f"a page holds at least one item, not {limit}")
    rows = [(pos, item) for pos, item in items if after is None or pos > after]
    shown = rows[:limit]
    return Page([item for _, item in shown], shown[-1][0] if len(rows) > limit else None)


def _utc(moment: datetime) -> datetime:
    """The time as the SQL stores hand it back, in UTC; like them, refuses a naive one."""
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: the broker stores aware UTC times")
    return moment.astimezone(UTC)


def _as_stored(grant: Grant) -> Grant:
    """The grant as the SQL store reads it back: its times in UTC."""
    expires_at = None if grant.expires_at is None else _utc(grant.expires_at)
    return replace(
        grant,
        created_at=_utc(grant.created_at),
        updated_at=_utc(grant.updated_at),
        expires_at=expires_at,
    )


class _Store:
    def __init__(self, uow: "FakeUnitOfWork") -> None:
        self._uow = uow

    @property
    def _t(self) -> Tables:
        return self._uow.working

    def _write(self, write: Write) -> None:
        self._uow.write(write)


class FakeGrantStore(_Store):
    def add(self, grant: Grant) -> None:
        grant = _as_stored(grant)

        def write(t: Tables) -> None:
            if grant.grant_id in t.grants:
                raise ValueError(f"duplicate grant id {grant.grant_id}")
            t.grants[grant.grant_id] = (t.next_seq(), grant)

        self._write(write)

    def save(self, grant: Grant) -> None:
        grant = _as_stored(grant)

        def write(t: Tables) -> None:
            if grant.grant_id not in t.grants:
                raise GrantNotFound(grant.grant_id)
            t.grants[grant.grant_id] = (t.grants[grant.grant_id][0], grant)

        self._write(write)

    def get(self, grant_id: str) -> Grant | None:
        row = self._t.grants.get(grant_id)
        return row[1] if row else None

    def _rows(self) -> list[tuple[int, Grant]]:
        return sorted(self._t.grants.values(), key=lambda row: row[0])

    def for_instance(self, instance: InstanceRef) -> list[Grant]:
        return [
            g
            for _, g in self._rows()
            if g.instance == instance and (g.state.is_desired or g.state.is_settling)
        ]

    def expired(self, now: datetime) -> list[Grant]:
        return [g for _, g in self._rows() if g.state.is_desired and g.has_expired(now)]

    def lapsed_requests(self, now: datetime) -> list[Grant]:
        return [
            g
            for _, g in self._rows()
            if g.state is GrantState.AWAITING_APPROVAL and g.has_expired(now)
        ]

    def settling_instances(self) -> list[InstanceRef]:
        return sorted({g.instance for _, g in self._rows() if g.state.is_settling})

    def live_instances(self) -> list[InstanceRef]:
        live = (g for _, g in self._rows() if g.state.is_desired or g.state.is_settling)
        return sorted({g.instance for g in live})

    def list(self, where: GrantFilter, after: int | None, limit: int) -> Page[Grant]:
        rows = [
            (seq, g)
            for seq, g in self._rows()
            if (not where.instance_id or g.instance_id == where.instance_id)
            and where.places.holds(g.place)
            and (not where.bucket or g.scope.bucket == where.bucket)
            and (where.state is None or g.state is where.state)
            and (not where.requested_by or g.requested_by == where.requested_by)
        ]
        return _page(rows, after, limit)

    def count_by_state(self) -> dict[GrantState, StateCount]:
        by_state: dict[GrantState, list[Grant]] = {}
        for _, grant in self._t.grants.values():
            by_state.setdefault(grant.state, []).append(grant)
        return {
            state: StateCount(len(grants), min(g.state_since for g in grants))
            for state, grants in by_state.items()
        }


class FakeAuditLog(_Store):
    def append(self, event: NewAuditEvent) -> None:
        # As the SQL store keeps it: the time in UTC, the detail as JSON (which refuses what
        # JSON cannot hold and reads tuples back as lists).
        detail = json.loads(json.dumps(event.detail, sort_keys=True))
        stored = replace(event, time=_utc(event.time), detail=detail)

        def write(t: Tables) -> None:
            t.audit.append(AuditEvent(event_id=len(t.audit) + 1, **vars(stored)))

        self._write(write)

    def list(self, where: AuditFilter, after: int | None, limit: int) -> Page[AuditEvent]:
        return _page([(e.event_id, e) for e in self._matching(where)], after, limit)

    def count(self, where: AuditFilter, after: int) -> int:
        return sum(1 for e in self._matching(where) if e.event_id > after)

    def _matching(self, where: AuditFilter) -> Iterator[AuditEvent]:
        return (
            e
            for e in self._t.audit
            if (not where.instance_id or e.instance_id == where.instance_id)
            and (not where.grant_id or e.grant_id == where.grant_id)
            and (not where.actions or e.action in where.actions)
            and _in_places(e, where.places)
        )

    def last_event_id(self) -> int:
        return len(self._t.audit)


class FakeIdempotencyKeys(_Store):
    def get(self, operation: str, key: str) -> IdempotencyRecord | None:
        return self._t.keys.get((operation, key))

    def add(self, record: IdempotencyRecord) -> None:
        """Like the SQL store, takes the key at once: a concurrent first use loses here, at
        add(), once the unit of work that holds the key commits (see FakeUnitOfWork.claim_key)."""
        record = replace(record, created_at=_utc(record.created_at))
        self._uow.claim_key((record.operation, record.key))

        def write(t: Tables) -> None:
            if (record.operation, record.key) in t.keys:
                raise IdempotencyConflict(record.key)
            t.keys[record.operation, record.key] = record

        self._write(write)


class FakeInstanceRecords(_Store):
    def get(self, instance: InstanceRef) -> InstanceRecord | None:
        return self._t.instances.get(instance)

    def save(self, record: InstanceRecord) -> None:
        record = replace(record, updated_at=_utc(record.updated_at))

        def write(t: Tables) -> None:
            t.instances[record.instance] = record

        self._write(write)

    def missing_since(self, instance: InstanceRef) -> datetime | None:
        return self._t.missing.get(instance)

    def note_missing(self, instance: InstanceRef, since: datetime) -> None:
        def write(t: Tables) -> None:
            t.missing.setdefault(instance, _utc(since))

        self._write(write)

    def noted_missing(self) -> set[InstanceRef]:
        return set(self._t.missing)

    def note_found(self, instance: InstanceRef) -> None:
        def write(t: Tables) -> None:
            t.missing.pop(instance, None)

        self._write(write)


class FakeDeliveries(_Store):
    def get(self, destination: str) -> DeliveryState | None:
        return self._t.deliveries.get(destination)

    def save(self, state: DeliveryState) -> None:
        def write(t: Tables) -> None:
            t.deliveries[state.destination] = state

        self._write(write)


class FakeDatabase:
    """The committed state; each unit of work reads a snapshot and replays its writes on commit."""

    def __init__(self) -> None:
        self.committed = Tables()
        self.lock = threading.Lock()
        self.commits = 0
        # Units of work begun, reading or writing.
        self.units = 0
        # Idempotency keys added by units of work not yet ended, and a condition that tells
        # when one ends: a second first use of a key waits for the first, as on a unique index.
        self.claimed_keys: dict[tuple[str, str], FakeUnitOfWork] = {}
        self.ended = threading.Condition(self.lock)

    def __call__(self, *, read_only: bool = False) -> "FakeUnitOfWork":
        with self.lock:
            self.units += 1
        return FakeUnitOfWork(self, read_only=read_only)

    def snapshot(self) -> Tables:
        with self.lock:
            return self.committed.copy()

    def grants(self) -> list[Grant]:
        return [g for _, g in sorted(self.snapshot().grants.values(), key=lambda row: row[0])]

    def audit_actions(self) -> list[str]:
        return [e.action for e in self.snapshot().audit]


class FakeUnitOfWork:
    def __init__(self, db: FakeDatabase, *, read_only: bool = False) -> None:
        self._db, self._read_only = db, read_only
        self.working = Tables()
        self._writes: list[Write] = []
        self.grants: GrantStore = FakeGrantStore(self)
        self.audit: AuditLog = FakeAuditLog(self)
        self.idempotency: IdempotencyKeys = FakeIdempotencyKeys(self)
        self.instances: InstanceRecords = FakeInstanceRecords(self)
        self.deliveries: Deliveries = FakeDeliveries(self)

    def __enter__(self) -> "FakeUnitOfWork":
        self.working = self._db.snapshot()
        self._writes = []
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._writes = []  # rollback: the working copy is simply dropped
        with self._db.lock:
            self._release_keys()

    def write(self, write: Write) -> None:
        write(self.working)
        self._writes.append(write)

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        with self._db.lock:
            after = self._db.committed.copy()
            for write in self._writes:
                write(after)
            self._db.committed = after
            self._db.commits += 1
            self._release_keys()
        self._writes = []

    def claim_key(self, key: tuple[str, str]) -> None:
        """Takes the idempotency key for this unit of work, or raises IdempotencyConflict when
        it is committed or taken here already. While another unit of work holds the key it
        waits, as a database does for an uncommitted row of the same unique key: the key is
        taken once that one commits, and free again if it rolls back."""
        db = self._db
        with db.ended:
            free = db.ended.wait_for(
                lambda: db.claimed_keys.get(key, self) is self, timeout=KEY_WAIT_SECONDS
            )
            if not free:
                raise StoreUnavailable(f"waited {KEY_WAIT_SECONDS}s for idempotency key {key[1]}")
            if key in db.committed.keys or key in self.working.keys:
                raise IdempotencyConflict(key[1])
            db.claimed_keys[key] = self

    def _release_keys(self) -> None:
        """Ends this unit of work's hold on its keys; the caller holds the database's lock."""
        for key, holder in list(self._db.claimed_keys.items()):
            if holder is self:
                del self._db.claimed_keys[key]
        self._db.ended.notify_all()


# ---------------------------------------------------------------------------------------------
# AWS: roles, inline policies, instance profiles, associations, instances.


@dataclass
class FakeRole:
    name: str
    path: str
    trust: dict[str, Any]
    tags: dict[str, str]
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    attached: list[str] = field(default_factory=list)
    boundary: str = ""

    @property
    def info(self) -> RoleInfo:
        arn = f"arn:aws:iam::{ACCOUNT}:role{self.path}{self.name}"
        return RoleInfo(
            self.name,
            arn,
            is_managed(self.tags),
            self.trust,
            is_adoptable(self.tags),
            self.boundary,
        )


@dataclass
class FakeProfile:
    name: str
    path: str
    tags: dict[str, str]
    roles: list[str] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:instance-profile{self.path}{self.name}"

    @property
    def info(self) -> ProfileInfo:
        return ProfileInfo(self.name, self.arn, tuple(self.roles), is_managed(self.tags))


def _refused(action: str, code: str) -> AwsRejected:
    """What the adapter raises when AWS refuses `action` with `code` (its errors.translate)."""
    if code == "LimitExceeded":
        return AwsQuotaExceeded(f"AWS {action} failed: {code} (an account quota is reached)")
    return AwsRejected(f"AWS {action} failed: {code}; the broker's log has AWS's message")


def _not_propagated(what: str) -> AwsUnavailable:
    """What the adapter raises when what a call needs never appears: it retries NoSuchEntity
    as IAM's propagation delay until its propagation timeout, then gives up as unavailable."""
    return AwsUnavailable(f"IAM did not propagate {what}")


def _policy_document(action: str, document: str) -> dict[str, Any]:
    """The parsed document; IAM refuses one that is not a JSON object.

    IAM's syntax check goes further (a Version of 2012-10-17, statements with an Effect, ...),
    and so does the emulator, but service tests arrange roles with short stand-in policies
    (e.g. {"Statement": []}) that it would refuse; the check stops here so they can.
    """
    try:
        policy = json.loads(document)
    except json.JSONDecodeError:
        raise _refused(action, "MalformedPolicyDocument") from None
    if not isinstance(policy, dict):
        raise _refused(action, "MalformedPolicyDocument")
    return policy


def _in_places(event: AuditEvent, places: PlaceFilter) -> bool:
    """Whether the event is about an instance of those places, as its detail names it."""
    account, region = event.detail.get("account", ""), event.detail.get("region", "")
    if places != ANY_PLACE and not region:
        return False  # about no instance: in no place
    return places.account in (None, account) and places.region in (None, region)


# What IAM accepts as a permissions boundary: a managed policy's ARN.
_POLICY_ARN = re.compile(r"arn:aws:iam::(\d{12}|aws):policy/.+")


class FakeAws:
    """Implements both Iam and Ec2. `calls` lists each successful mutating call, in order;
    `entered` counts every call made, by method name."""

    def __init__(self, instances: tuple[str, ...] = ()) -> None:
        self.instances = set(instances)
        self.instance_tags: dict[str, dict[str, str]] = {}
        self.terminated: set[str] = set()
        self.roles: dict[str, FakeRole] = {}
        self.profiles: dict[str, FakeProfile] = {}
        self.associations: dict[str, AssociationInfo] = {}
        self.calls: list[tuple[str, ...]] = []
        # Every operation called, reads included, by method name.
        self.entered: Counter[str] = Counter()
        self._failures: dict[str, list[BrokerError]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        # IAM's quotas of the account (GetAccountSummary); AWS's defaults.
        self.roles_quota = self.profiles_quota = 1000
        # Set: the broker's IAM policy refuses a policy on a role without this boundary.
        self.required_boundary = ""

    def fail(self, operation: str, error: BrokerError, times: int = 1) -> None:
        """The next `times` calls of `operation` (a method name) raise `error`."""
        self._failures.setdefault(operation, []).extend([error] * times)

    def recover(self, operation: str) -> None:
        """`operation` fails no more."""
        self._failures.pop(operation, None)

    def _enter(self, operation: str) -> None:
        time.sleep(0)  # lets other threads run here, as a network call would: races show up
        self.entered[operation] += 1
        pending = self._failures.get(operation)
        if pending:
            raise pending.pop(0)

    def _did(self, *call: str) -> None:
        self.calls.append(call)

    def writes(self, operation: str) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[0] == operation]

    # --- IAM
    def get_role(self, name: str) -> RoleInfo | None:
        self._enter("get_role")
        role = self.roles.get(name)
        return role.info if role else None

    def create_role(
        self,
        name: str,
        path: str,
        trust_policy: str,
        tags: dict[str, str],
        permissions_boundary: str = "",
    ) -> RoleInfo:
        with self._lock:
            self._enter("create_role")
            if name in self.roles:
                return self.roles[name].info  # as the adapter: what is there, whoever made it
            if permissions_boundary and not _POLICY_ARN.fullmatch(permissions_boundary):
                raise _refused("CreateRole", "InvalidInput")
            trust = json.loads(trust_policy)
            self.roles[name] = FakeRole(
                name, path, trust, dict(tags), boundary=permissions_boundary
            )
            self._did("create_role", name)
            return self.roles[name].info

    def update_trust_policy(self, role_name: str, document: str) -> None:
        with self._lock:
            self._enter("update_trust_policy")
            role = self._role("UpdateAssumeRolePolicy", role_name)
            role.trust = _policy_document("UpdateAssumeRolePolicy", document)
            self._did("update_trust_policy", role_name)

    def put_role_boundary(self, role_name: str, policy_arn: str) -> None:
        with self._lock:
            self._enter("put_role_boundary")
            if not _POLICY_ARN.fullmatch(policy_arn):
                raise _refused("PutRolePermissionsBoundary", "InvalidInput")
            self._role("PutRolePermissionsBoundary", role_name).boundary = policy_arn
            self._did("put_role_boundary", role_name, policy_arn)

    def list_inline_policies(self, role_name: str) -> list[str]:
        self._enter("list_inline_policies")
        role = self.roles.get(role_name)
        return sorted(role.policies) if role else []

    def list_attached_policies(self, role_name: str) -> list[str]:
        self._enter("list_attached_policies")
        role = self.roles.get(role_name)
        return list(role.attached) if role else []

    def profiles_holding(self, role_name: str) -> list[str]:
        self._enter("profiles_holding")
        return sorted(p.name for p in self.profiles.values() if role_name in p.roles)

    def detach_policy(self, role_name: str, policy_arn: str) -> None:
        with self._lock:
            self._enter("detach_policy")
            role = self.roles.get(role_name)
            if role is not None and policy_arn in role.attached:
                role.attached.remove(policy_arn)
                self._did("detach_policy", role_name, policy_arn)

    def delete_role(self, name: str) -> None:
        with self._lock:
            self._enter("delete_role")
            role = self.roles.get(name)
            if role is None:
                return
            in_profile = any(name in p.roles for p in self.profiles.values())
            if role.policies or role.attached or in_profile:
                raise _refused("DeleteRole", "DeleteConflict")
            del self.roles[name]
            self._did("delete_role", name)

    def get_role_policy(self, role_name: str, policy_name: str) -> dict[str, Any] | None:
        self._enter("get_role_policy")
        role = self.roles.get(role_name)
        return role.policies.get(policy_name) if role else None

    def put_role_policy(
        self, role_name: str, policy_name: str, document: str, *, after_boundary: bool = False
    ) -> None:
        with self._lock:
            self._enter("put_role_policy")
            role = self._role("PutRolePolicy", role_name)
            if self.required_boundary and role.boundary != self.required_boundary:
                # deploy/iam/broker-policy.json: no policy on a role without the boundary.
                raise _refused("PutRolePolicy", "AccessDenied")
            role.policies[policy_name] = _policy_document("PutRolePolicy", document)
            waited = ("after_boundary",) if after_boundary else ()
            self._did("put_role_policy", role_name, policy_name, *waited)

    def delete_role_policy(self, role_name: str, policy_name: str) -> None:
        with self._lock:
            self._enter("delete_role_policy")
            role = self.roles.get(role_name)
            if role is not None and role.policies.pop(policy_name, None) is not None:
                self._did("delete_role_policy", role_name, policy_name)

    def get_instance_profile(self, name: str) -> ProfileInfo | None:
        self._enter("get_instance_profile")
        profile = self.profiles.get(name)
        return profile.info if profile else None

    def create_instance_profile(self, name: str, path: str, tags: dict[str, str]) -> ProfileInfo:
        with self._lock:
            self._enter("create_instance_profile")
            if name in self.profiles:
                return self.profiles[name].info  # as the adapter: what is there, whoever made it
            self.profiles[name] = FakeProfile(name, path, dict(tags))
            self._did("create_instance_profile", name)
            return self.profiles[name].info

    def add_role_to_instance_profile(self, profile_name: str, role_name: str) -> None:
        with self._lock:
            self._enter("add_role_to_instance_profile")
            profile = self.profiles.get(profile_name)
            if profile is None or role_name not in self.roles:
                raise _not_propagated(f"role {role_name} or instance profile {profile_name}")
            if profile.roles == [role_name]:
                return  # as the adapter: adding the role it already holds is done
            if profile.roles:
                raise _refused("AddRoleToInstanceProfile", "LimitExceeded")
            profile.roles.append(role_name)
            self._did("add_role_to_instance_profile", profile_name, role_name)

    def remove_role_from_instance_profile(self, profile_name: str, role_name: str) -> None:
        with self._lock:
            self._enter("remove_role_from_instance_profile")
            profile = self.profiles.get(profile_name)
            if profile is not None and role_name in profile.roles:
                profile.roles.remove(role_name)
                self._did("remove_role_from_instance_profile", profile_name, role_name)

    def delete_instance_profile(self, name: str) -> None:
        with self._lock:
            self._enter("delete_instance_profile")
            profile = self.profiles.get(name)
            if profile is None:
                return
            if profile.roles:
                raise _refused("DeleteInstanceProfile", "DeleteConflict")
            del self.profiles[name]
            self._did("delete_instance_profile", name)

    def managed_instances(self, path: str) -> dict[str, str]:
        self._enter("managed_instances")
        # Profiles first, so that a role's region tag wins, as in BotoIam.
        entities: list[FakeRole | FakeProfile] = [*self.profiles.values(), *self.roles.values()]
        return {
            e.name.removeprefix(NAME_PREFIX): e.tags.get(REGION_TAG_KEY, "")
            for e in entities
            if e.path == path
            and e.name.startswith(NAME_PREFIX)
            and is_managed(e.tags)
            and e.tags.get(INSTANCE_TAG_KEY) == e.name.removeprefix(NAME_PREFIX)
            and not instance_id_problems(e.name.removeprefix(NAME_PREFIX))
        }

    def account_usage(self) -> AccountUsage:
        self._enter("account_usage")
        return AccountUsage(
            len(self.roles), self.roles_quota, len(self.profiles), self.profiles_quota
        )

    def list_broker_roles(self) -> dict[str, ListedRole]:
        self._enter("list_broker_roles")
        return {
            role.name: ListedRole(
                role.info,
                dict(role.policies),
                tuple(role.attached),
                tuple(p.info for p in self.profiles.values() if role.name in p.roles),
            )
            for role in self.roles.values()
            if role.name.startswith(NAME_PREFIX)
            and not instance_id_problems(role.name.removeprefix(NAME_PREFIX))
        }

    def _role(self, action: str, name: str) -> FakeRole:
        if name not in self.roles:
            raise _refused(action, "NoSuchEntity")
        return self.roles[name]

    # --- EC2
    def terminate(self, instance_id: str) -> None:
        self.instances.discard(instance_id)
        self.terminated.add(instance_id)

    def is_terminated(self, instance_id: str) -> bool:
        self._enter("is_terminated")
        return instance_id in self.terminated

    def find_instance(self, instance_id: str) -> InstanceInfo | None:
        self._enter("find_instance")
        if instance_id not in self.instances:
            return None
        association = self.associations.get(instance_id)
        tags = dict(self.instance_tags.get(instance_id, {}))
        return InstanceInfo(instance_id, tags, association.profile_arn if association else "")

    def get_association(self, instance_id: str) -> AssociationInfo | None:
        self._enter("get_association")
        return self.associations.get(instance_id)

    def associate(self, instance_id: str, profile_name: str) -> AssociationInfo:
        with self._lock:
            self._enter("associate")
            if instance_id not in self.instances:
                raise InstanceNotFound(instance_id)
            profile = self.profiles.get(profile_name)
            if profile is None:
                raise _not_propagated(f"instance profile {profile_name} to EC2")
            current = self.associations.get(instance_id)
            if current is not None and current.profile_arn == profile.arn:
                return current  # as the adapter: an earlier or concurrent call associated it
            if current is not None:
                raise _refused("AssociateIamInstanceProfile", "IncorrectState")
            arn = profile.arn
            association = AssociationInfo(f"iip-assoc-{next(self._ids):017x}", instance_id, arn)
            self.associations[instance_id] = association
            self._did("associate", instance_id, profile_name)
            return association

    def disassociate(self, association_id: str) -> None:
        with self._lock:
            self._enter("disassociate")
            for instance_id, association in list(self.associations.items()):
                if association.association_id == association_id:
                    del self.associations[instance_id]
                    self._did("disassociate", association_id)

    def instances_holding(self, profile_arn: str) -> set[str]:
        self._enter("instances_holding")
        return {i for i, a in self.associations.items() if a.profile_arn == profile_arn}

    def describe_many(self, instance_ids: Collection[str]) -> InstancesSeen:
        self._enter("describe_many")
        wanted = set(instance_ids)
        return InstancesSeen(
            existing=frozenset(wanted & self.instances),
            gone=frozenset(wanted & self.terminated),
            associations={i: a for i, a in self.associations.items() if i in wanted},
        )

    def associate_foreign(self, instance_id: str, profile_arn: str) -> None:
        """Sets up an association the broker did not make (not recorded as a call)."""
        self.associations[instance_id] = AssociationInfo(
            "iip-assoc-foreign", instance_id, profile_arn
        )


# ---------------------------------------------------------------------------------------------
# Clock, ids, wiring.


@dataclass
class RecordedSpan:
    name: str
    attributes: dict[str, str]
    # What ended the span's block, if anything did.
    failure: BaseException | None = None

    def set_attribute(self, key: str, value: str) -> None:
        self.attributes[key] = value


@dataclass
class RecordingTelemetry:
    """A Telemetry that keeps what it is told: spans, convergences, authorization decisions,
    accounts' usage."""

    spans: list[RecordedSpan] = field(default_factory=list)
    took: list[tuple[float, str]] = field(default_factory=list)
    decisions: list[tuple[str, bool]] = field(default_factory=list)
    usage: dict[str, AccountUsage] = field(default_factory=dict)

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, str]) -> Iterator[RecordedSpan]:
        recorded = RecordedSpan(name, dict(attributes))
        self.spans.append(recorded)
        try:
            yield recorded
        except BaseException as error:
            recorded.failure = error
            raise

    def convergence_took(self, seconds: float, outcome: str) -> None:
        self.took.append((seconds, outcome))

    def authorization_decided(self, command: str, *, allowed: bool) -> None:
        self.decisions.append((command, allowed))

    def account_usage_read(self, account: str, usage: AccountUsage) -> None:
        self.usage[account] = usage


class FakePoster:
    """Takes deliveries, or refuses them while `down`."""

    def __init__(self) -> None:
        self.taken: list[dict[str, object]] = []
        self.down = False

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        if self.down:
            raise DeliveryFailed("unreachable: connection refused")
        self.taken.append(json.loads(body))


class _NoPoster:
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        raise AssertionError("this world delivers no notifications")


class FixedClock:
    def __init__(self, now: datetime = START) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


class SequentialIds:
    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def new_grant_id(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=next(self._counter)))


class FakeAccounts:
    """The AwsAccounts port over FakeAws worlds: the home account's in its first region, and
    others by place (a FakeAws is one account's IAM and one region's EC2; an account's IAM is
    that of its first place given)."""

    def __init__(self, home: FakeAws, others: Mapping[Place, FakeAws]) -> None:
        self._places = {HOME: home, **others}

    def iam(self, account: str) -> FakeAws:
        found = [aws for place, aws in self._places.items() if place.account == account]
        if not found:
            raise AwsUnavailable(f"account {account} cannot be reached: it is not configured")
        return found[0]

    def ec2(self, place: Place) -> FakeAws:
        if place not in self._places:
            raise AwsUnavailable(f"account {place.account} cannot be reached: not configured")
        return self._places[place]


@dataclass
class World:
    """The message bus over fakes, built the way bootstrap builds the real one, and the fakes
    behind it, for tests to arrange and inspect."""

    db: FakeDatabase
    aws: FakeAws
    clock: FixedClock
    policy: PolicyHolder
    options: Options = field(default_factory=Options)
    locks: ProcessInstanceLocks = field(default_factory=ProcessInstanceLocks)
    ids: "SequentialIds" = field(default_factory=lambda: SequentialIds())  # noqa: PLW0108 (defined below)
    # A store to use instead of `db` (a real SQL one, or a broken one).
    store: UnitOfWorkFactory | None = None
    # Takes the notifications' deliveries (None: no destination may be delivered to).
    poster: WebhookPoster | None = None
    # The accounts and regions served, and the AWS of those beyond the home place.
    accounts: AccountsHolder = field(default_factory=lambda: AccountsHolder(HOME_ACCOUNTS))
    elsewhere: dict[Place, FakeAws] = field(default_factory=dict)
    # Each account's permissions boundary as read (none: grants are not checked against one).
    boundaries: BoundariesHolder = field(default_factory=lambda: BoundariesHolder(Boundaries()))
    bus: MessageBus = field(init=False)

    def __post_init__(self) -> None:
        self.bus = build_bus(self.ports, self.options)

    @property
    def ports(self) -> Ports:
        return Ports(
            uow=self.store if self.store is not None else self.db,
            aws=FakeAccounts(self.aws, self.elsewhere),
            accounts=self.accounts,
            clock=self.clock,
            ids=self.ids,
            locks=self.locks,
            policy=self.policy,
            poster=self.poster or _NoPoster(),
            boundaries=self.boundaries,
        )

    def handle(self, command: Command[R]) -> R:
        return self.bus.handle(command)

    def revoke(self, grant_id: str, **options: Any) -> Grant:
        return self.handle(RevokeAccess(grant_id=grant_id, **options)).grant

    def grant_of(self, grant_id: str) -> Grant:
        """The grant as the database holds it, read past authorization."""
        with self.db() as uow:
            grant = uow.grants.get(grant_id)
        if grant is None:
            raise GrantNotFound(grant_id)
        return grant

    def converge(self, instance: str | InstanceRef, actor: str = "system") -> None:
        """Converges the instance (an id: at home) as the pipeline's settle step and the sweep
        do."""
        where = at_home(instance) if isinstance(instance, str) else instance
        self.convergence().converge(where, actor)

    def convergence(self, telemetry: Telemetry | None = None) -> Convergence:
        """Convergence over this world's fakes, as the bus has it."""
        return Convergence(
            uow=self.db,
            aws=FakeAccounts(self.aws, self.elsewhere),
            clock=self.clock,
            locks=self.locks,
            role_path=self.options.role_path,
            permissions_boundary=self.options.permissions_boundary_arn,
            adopt_foreign_profiles=self.options.adopt_foreign_profiles,
            telemetry=telemetry,
            accounts=self.accounts,
            quota_headroom=self.options.quota_headroom,
            binding=self.options.binding,
            boundaries=self.boundaries,
        )

    def with_options(self, **changes: Any) -> "World":
        """The same fakes, under a bus built with other options."""
        return self._rebuilt(options=replace(self.options, **changes))

    def with_policy(self, policy: AccessPolicy) -> "World":
        return self._rebuilt(policy=PolicyHolder(policy))

    def with_store(self, store: UnitOfWorkFactory) -> "World":
        return self._rebuilt(store=store)

    def with_poster(self, poster: WebhookPoster) -> "World":
        return self._rebuilt(poster=poster)

    def with_boundaries(self, boundaries: Boundaries) -> "World":
        """The same fakes, with these boundaries read."""
        return self._rebuilt(boundaries=BoundariesHolder(boundaries))

    def with_accounts(self, accounts: Accounts, elsewhere: Mapping[Place, FakeAws]) -> "World":
        """The same fakes, serving these accounts and regions; `elsewhere` holds the AWS of
        every place but the home account's first region."""
        return self._rebuilt(accounts=AccountsHolder(accounts), elsewhere=dict(elsewhere))

    def _rebuilt(self, **changes: Any) -> "World":
        return replace(self, **changes)  # __post_init__ builds its bus anew


def world(*instances: str, aws: "FakeAws | None" = None, db: "FakeDatabase | None" = None) -> World:
    """A fresh world in which these EC2 instances exist. As in auth mode `none` without a
    policy file, every caller may do everything; authorization tests set their own policy."""
    return World(
        db if db is not None else FakeDatabase(),
        aws if aws is not None else FakeAws(instances),
        FixedClock(),
        PolicyHolder(UNRESTRICTED),
    )


# ---------------------------------------------------------------------------------------------
# Vocabulary shared by the tests.

INSTANCE = "i-0123456789abcdef0"
OTHER_INSTANCE = "i-0fedcba987654321f"
ROLE = f"accessbroker-{INSTANCE}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/accessbroker/{ROLE}"
PROFILE_ARN = f"arn:aws:iam::{ACCOUNT}:instance-profile/accessbroker/{ROLE}"
POLICY = "accessbroker-grants"


def grant_command(
    bucket: str = "photos",
    access: Access | None = Access.UPLOAD,
    *,
    instance_id: str = INSTANCE,
    **options: Any,
) -> GrantAccess:
    return GrantAccess(instance_id=instance_id, bucket=bucket, access=access, **options)


def policy_of(*scopes: tuple[str, str, Access]) -> dict[str, Any]:
    """The policy build_policy makes of these (bucket, prefix, access) scopes."""
    document = build_policy(GrantScope(*scope) for scope in scopes)
    assert document is not None
    return document
