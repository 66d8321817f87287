"""Declarative plans: what to grant and revoke so that an instance's grants match a file.

Pure functions over the SDK's models, so the diff and the idempotency keys are unit-tested."""

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from accessbroker.cli.requestfile import DesiredGrant, RequestFile
from accessbroker.models import Grant, GrantState

LIVE_STATES = frozenset({GrantState.PENDING, GrantState.ACTIVE})
REVOKE_REASON = "not in the request file (brokerctl apply)"
KEY_PREFIX = "brokerctl-"


@dataclass(frozen=True)
class Plan:
    """To reach the file: grants to make, live grants to revoke, and grants already right."""

    to_grant: list[DesiredGrant] = field(default_factory=list)
    to_revoke: list[Grant] = field(default_factory=list)
    unchanged: list[Grant] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.to_grant and not self.to_revoke


def make_plan(request: RequestFile, live: Mapping[str, Sequence[Grant]]) -> Plan:
    """Compares each listed instance's live grants (by bucket, prefix and access) with the file.

    A live grant no entry asks for is revoked, and so is any second live grant of one scope;
    instances the file does not list are left alone."""
    plan = Plan()
    for instance_id, desired in request.instances.items():
        wanted = {grant.scope for grant in desired}
        kept: set[tuple[object, ...]] = set()
        for grant in live_grants(live.get(instance_id, ())):
            scope = (grant.bucket, grant.prefix, grant.access)
            if scope in wanted and scope not in kept:
                kept.add(scope)
                plan.unchanged.append(grant)
            else:
                plan.to_revoke.append(grant)
        plan.to_grant.extend(g for g in desired if g.scope not in kept)
    return plan


def live_grants(grants: Iterable[Grant]) -> list[Grant]:
    """The grants an instance holds or is about to hold; active ones first, then oldest first."""
    live = [g for g in grants if g.state in LIVE_STATES]
    return sorted(live, key=lambda g: (g.state is not GrantState.ACTIVE, g.created_at))


def grant_key(grant: DesiredGrant, generation: int = 0) -> str:
    """The idempotency key of an entry: the same content gives the same key, so a re-run or a
    concurrent run of `apply` never doubles a grant. A later generation is used when the key's
    earlier grant has since ended (revoked, expired, failed), so the entry can be granted again."""
    content = {
        "instance_id": grant.instance_id,
        "bucket": grant.bucket,
        "prefix": grant.prefix,
        "access": grant.access.value,
        "ttl_seconds": grant.ttl.total_seconds() if grant.ttl else None,
        "reason": grant.reason,
        "generation": generation,
        # Only when named: the keys of files from before accounts and regions stay the same.
        **({"account": grant.account} if grant.account else {}),
        **({"region": grant.region} if grant.region else {}),
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return KEY_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def revoke_key(grant_id: str) -> str:
    return KEY_PREFIX + hashlib.sha256(f"revoke:{grant_id}".encode()).hexdigest()
