"""Everything a use case needs, wired once by the composition root (broker.bootstrap)."""

from dataclasses import dataclass, field
from datetime import timedelta

from broker.domain.authorization import AccessPolicy
from broker.service.policy_holder import PolicyHolder
from broker.service.ports import Clock, Ec2, Iam, IdGenerator, InstanceLocks, UnitOfWorkFactory


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


@dataclass(frozen=True)
class Dependencies:
    uow: UnitOfWorkFactory
    iam: Iam
    ec2: Ec2
    clock: Clock
    ids: IdGenerator
    locks: InstanceLocks
    role_path: str
    limits: GrantLimits = field(default_factory=GrantLimits)
    # Whether a grant on an instance holding a foreign profile adds the broker's inline policy
    # to that profile's role (BROKER_FOREIGN_PROFILE=attach) instead of being refused.
    adopt_foreign_profiles: bool = False
    # Set as the permissions boundary of every role the broker creates; "" for none.
    permissions_boundary_arn: str = ""
    # Who may do what. The composition root sets it from the settings; left out, nobody but the
    # requester of a grant may do anything, and nothing new may be granted.
    access_policy: PolicyHolder = field(default_factory=lambda: PolicyHolder(AccessPolicy()))
