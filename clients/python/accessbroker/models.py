"""What the broker returns, as typed Python values."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Access(StrEnum):
    UPLOAD = "upload"
    READ = "read"
    READ_WRITE = "read-write"
    LIST = "list"

    @classmethod
    def parse(cls, value: "Access | str") -> "Access":
        """Accepts the enum or its name in any common spelling: "read-write", "READ_WRITE"."""
        if isinstance(value, Access):
            return value
        if not isinstance(value, str):
            raise ValueError(f"access must be an Access or its name, not {value!r}")
        wanted = value.strip().lower().replace("_", "-")
        for access in cls:
            if access.value == wanted:
                return access
        choices = ", ".join(a.value for a in cls)
        raise ValueError(f"unknown access {value!r}: expected one of {choices}")


class GrantState(StrEnum):
    # Waiting for its approvers; nothing of it is in AWS yet.
    AWAITING_APPROVAL = "awaiting_approval"
    PENDING = "pending"
    ACTIVE = "active"
    FAILED = "failed"
    REVOKING = "revoking"
    REVOKED = "revoked"
    EXPIRED = "expired"
    # An approver refused it.
    DENIED = "denied"

    @classmethod
    def parse(cls, value: "GrantState | str") -> "GrantState":
        if isinstance(value, GrantState):
            return value
        if not isinstance(value, str):
            raise ValueError(f"state must be a GrantState or its name, not {value!r}")
        try:
            return cls(value.strip().lower().replace("-", "_"))
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown state {value!r}: expected one of {choices}") from None

    @property
    def is_final(self) -> bool:
        """True for the states a grant never leaves."""
        return self in (
            GrantState.FAILED,
            GrantState.REVOKED,
            GrantState.EXPIRED,
            GrantState.DENIED,
        )


class DriftKind(StrEnum):
    """How AWS differs from what an instance's live grants need."""

    ROLE = "role"
    TRUST_POLICY = "trust_policy"
    POLICY = "policy"
    EXTRA_POLICY = "extra_policy"
    PROFILE = "profile"
    ROLE_IN_PROFILE = "role_in_profile"
    ASSOCIATION = "association"
    FOREIGN_ASSOCIATION = "foreign_association"
    INSTANCE_GONE = "instance_gone"
    UNNEEDED = "unneeded"
    BOUNDARY = "boundary"


@dataclass(frozen=True)
class Grant:
    grant_id: str
    instance_id: str
    bucket: str
    prefix: str
    access: Access
    state: GrantState
    role_name: str
    role_arn: str
    instance_profile_name: str
    instance_profile_arn: str
    association_id: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    requested_by: str
    reason: str
    failure_reason: str
    # For a grant that needed approval: who may approve it (globs allowed), how many distinct
    # approvals it needs, and those given so far. Empty and 0 for one that needed none.
    approvers: tuple[str, ...] = ()
    approvals_required: int = 0
    approvals: tuple["Approval", ...] = ()
    # Where the instance lives: its account's id ("" for the broker's own) and region.
    account: str = ""
    region: str = ""


@dataclass(frozen=True)
class Approval:
    approver: str
    time: datetime
    reason: str
    # A shorter ttl the approver asked for; None: as requested.
    ttl: timedelta | None


@dataclass(frozen=True)
class GrantResult:
    """A grant as GrantAccess left it, the resulting policy, and (for dry runs) the plan.

    `covered_by` is set when a broader live grant already gave what was asked: `grant` is then
    that grant, and nothing new was granted.
    """

    grant: Grant
    policy: dict[str, Any] | None
    planned_changes: list[str] = field(default_factory=list)
    covered_by: str = ""
    # Set when an approval changed nothing, saying why (this approver had approved already).
    notice: str = ""


@dataclass(frozen=True)
class NotificationDestination:
    """Where the broker sends grant state changes, and how its deliveries stand."""

    kind: str
    key: str
    # The URL with its path hidden.
    url: str
    delivered_through_event_id: int
    pending_events: int
    failures: int
    last_error: str
    last_attempt_at: datetime | None


@dataclass(frozen=True)
class InstanceAccess:
    instance_id: str
    role_name: str
    role_arn: str
    instance_profile_name: str
    instance_profile_arn: str
    association_id: str
    policy: dict[str, Any] | None
    grants: list[Grant]
    # Where the instance lives: its account's id ("" for the broker's own) and region.
    account: str = ""
    region: str = ""


@dataclass(frozen=True)
class AuditEvent:
    event_id: int
    time: datetime
    actor: str
    action: str
    grant_id: str
    instance_id: str
    outcome: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Drift:
    """One difference; `repaired` when the broker changed AWS so that it is gone."""

    instance_id: str
    kind: DriftKind
    expected: str
    actual: str
    repaired: bool
    # Where the instance lives: its account's id ("" for the broker's own) and region.
    account: str = ""
    region: str = ""


@dataclass(frozen=True)
class AccessDecision:
    """What the broker's access policy decides for a caller's grant, and why."""

    allowed: bool
    # "allowed by rule 2", "… is an admin", or what refuses it.
    reason: str
    # The rule that allows it, by its position in the policy file (from 1); None when none does.
    rule: int | None
    # The ttl the grant would get when allowed; None: it would not expire.
    ttl: timedelta | None
    # Set when allowed only once approved: who may approve, and how many must.
    approvers: tuple[str, ...] = ()
    approvals_required: int = 0
