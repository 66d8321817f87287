"""Grants: what an instance may do, and the states a grant moves through."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from broker.domain.access import Access, GrantState
from broker.domain.approval import Approval, ApprovalRule, Vote
from broker.domain.errors import WrongState
from broker.domain.places import InstanceRef, Place

_ALLOWED_TRANSITIONS: dict[GrantState, frozenset[GrantState]] = {
    # Approved (then converged as any grant), denied, lapsed unanswered, or withdrawn by its
    # requester: nothing of it ever reached AWS.
    GrantState.AWAITING_APPROVAL: frozenset(
        {GrantState.PENDING, GrantState.DENIED, GrantState.EXPIRED, GrantState.REVOKED}
    ),
    # A pending grant whose time is up before it took effect expires without ever being active.
    GrantState.PENDING: frozenset(
        {GrantState.ACTIVE, GrantState.FAILED, GrantState.REVOKING, GrantState.EXPIRED}
    ),
    GrantState.ACTIVE: frozenset({GrantState.REVOKING, GrantState.EXPIRED, GrantState.FAILED}),
    GrantState.REVOKING: frozenset({GrantState.REVOKED}),
    GrantState.FAILED: frozenset(),
    GrantState.REVOKED: frozenset(),
    GrantState.EXPIRED: frozenset(),
    GrantState.DENIED: frozenset(),
}


@dataclass(frozen=True, order=True)
class GrantScope:
    """The permission itself: an access level on a bucket, under a key prefix ("" = all keys)."""

    bucket: str
    prefix: str
    access: Access


@dataclass(frozen=True)
class GrantRequest:
    """A validated request to grant access."""

    instance_id: str
    scope: GrantScope
    ttl: timedelta | None
    reason: str
    requested_by: str
    # Where the instance lives.
    place: Place

    @property
    def instance(self) -> InstanceRef:
        return InstanceRef(self.place, self.instance_id)


@dataclass(frozen=True)
class InstanceResources:
    """The AWS resources that carry an instance's grants, as last seen by the broker."""

    role_name: str = ""
    role_arn: str = ""
    profile_name: str = ""
    profile_arn: str = ""
    association_id: str = ""


@dataclass(frozen=True)
class Grant:
    grant_id: str
    instance_id: str
    # Where the instance lives.
    place: Place
    scope: GrantScope
    state: GrantState
    created_at: datetime
    updated_at: datetime
    # When it entered its state (its creation, for a pending grant): how long it has been there.
    state_since: datetime
    expires_at: datetime | None
    requested_by: str
    reason: str
    failure_reason: str = ""
    resources: InstanceResources = InstanceResources()
    # Set when a rule asked for approval; while the grant awaits it, `expires_at` is when the
    # request lapses unanswered.
    approval: Approval | None = None

    @property
    def instance(self) -> InstanceRef:
        return InstanceRef(self.place, self.instance_id)

    def moved_to(self, state: GrantState, now: datetime, failure_reason: str = "") -> "Grant":
        """The grant in `state`; refuses transitions the state machine does not allow."""
        if state not in _ALLOWED_TRANSITIONS[self.state]:
            raise WrongState(self.grant_id, self.state.value, f"it cannot become {state.value}")
        return replace(
            self, state=state, updated_at=now, state_since=now, failure_reason=failure_reason
        )

    def the_approval(self) -> Approval:
        assert self.approval is not None, "only a grant that needed approval has one"
        return self.approval

    def approved_by(self, vote: Vote, approval: Approval) -> "Grant":
        """The grant with `vote` counted into `approval` (the request's, as the policy in force
        asks for it); once enough have, it is PENDING, without an expiry until it is active."""
        counted = approval.with_vote(vote)
        voted = replace(self, approval=counted, updated_at=vote.at)
        if not counted.is_complete:
            return voted
        return replace(voted.moved_to(GrantState.PENDING, vote.at), expires_at=None)

    def activated(self, now: datetime) -> "Grant":
        """ACTIVE; a grant that needed approval gets its ttl from now, its activation."""
        active = self.moved_to(GrantState.ACTIVE, now)
        if self.approval is None:
            return active
        return replace(active, expires_at=expiry_after(now, self.approval.granted_ttl))

    def with_resources(self, resources: InstanceResources, now: datetime) -> "Grant":
        return replace(self, resources=resources, updated_at=now)

    def has_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def is_live(self, now: datetime) -> bool:
        """Pending or active, and not past its expiry: AWS should hold its permissions."""
        return self.state.is_desired and not self.has_expired(now)

    def extended_to(self, expires_at: datetime | None, now: datetime) -> "Grant":
        """The grant expiring at the later of its expiry and `expires_at`; never earlier."""
        return replace(self, expires_at=later_expiry(self.expires_at, expires_at), updated_at=now)


@dataclass(frozen=True)
class GrantLimits:
    """The server's rules for how long grants last (BROKER_DEFAULT_TTL, BROKER_MAX_TTL)."""

    # For a grant requested without a ttl; None: it does not expire (unless max_ttl is set).
    default_ttl: timedelta | None = None
    # The longest ttl a grant or an extension may ask for; None: the domain's MAX_TTL only.
    max_ttl: timedelta | None = None

    def ttl_for(self, requested: timedelta | None) -> timedelta | None:
        """The ttl a grant gets: as requested, else the default, else the maximum (if any)."""
        if requested is not None:
            return requested
        return self.default_ttl if self.default_ttl is not None else self.max_ttl


def later_expiry(current: datetime | None, requested: datetime | None) -> datetime | None:
    """The later of two expiries, None meaning never (later than any time)."""
    if current is None or requested is None:
        return None
    return max(current, requested)


def expiry_after(now: datetime, ttl: timedelta | None) -> datetime | None:
    return now + ttl if ttl is not None else None


def awaiting_approval(
    grant_id: str, request: GrantRequest, rule: ApprovalRule, now: datetime, timeout: timedelta
) -> Grant:
    """A request that waits for `rule`'s approvers; it lapses `timeout` from now (the rule's
    own timeout, if it names one)."""
    grant = new_grant(grant_id, request, now)
    return replace(
        grant,
        state=GrantState.AWAITING_APPROVAL,
        expires_at=now + (rule.timeout or timeout),
        approval=Approval.asked_by(rule, request.ttl),
    )


def new_grant(grant_id: str, request: GrantRequest, now: datetime) -> Grant:
    return Grant(
        grant_id=grant_id,
        instance_id=request.instance_id,
        place=request.place,
        scope=request.scope,
        state=GrantState.PENDING,
        created_at=now,
        updated_at=now,
        state_since=now,
        expires_at=expiry_after(now, request.ttl),
        requested_by=request.requested_by,
        reason=request.reason,
    )
