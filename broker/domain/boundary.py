"""The permissions boundary every role the broker creates carries (BROKER_PERMISSIONS_BOUNDARY_ARN,
deploy/iam/boundary-policy.json): whatever a role's own policy says, it can do no more than the
S3 actions of the four access levels, on the buckets the boundary names. The broker checks at
start that the boundary it is given allows nothing else, and puts it back on a role that lost it.

The boundary is one managed policy per account, named BOUNDARY_NAME: the broker's own IAM policy
lets it create roles and write their policies only when they carry a policy of that name, and a
spoke account's boundary is the policy of the same name in that account."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from broker.domain.accounts import Account
from broker.domain.errors import OutsideBoundary
from broker.domain.grants import GrantScope
from broker.domain.iam_patterns import listed, statements, wildcard
from broker.domain.places import HOME_ACCOUNT
from broker.domain.policy import BUCKET_ACTIONS, LISTS_BUCKET, OBJECT_ACTIONS

BOUNDARY_NAME = "accessbroker-boundary"
# What deploy/iam/boundary-policy.json names where the grantable buckets go.
BUCKETS_PLACEHOLDER = "GRANTABLE_BUCKETS"
# Every action an access level may grant (listing included): all a boundary may allow.
BOUNDARY_ACTIONS = frozenset(
    {
        "s3:ListBucket",
        *(a for actions in OBJECT_ACTIONS.values() for a in actions),
        *(a for actions in BUCKET_ACTIONS.values() for a in actions),
    }
)


def boundary_document(buckets: Sequence[str]) -> dict[str, Any]:
    """The boundary for the buckets (names or patterns such as `team-*`) the broker may grant:
    the access levels' S3 actions on those buckets and their objects, nothing else."""
    resources = [r for b in buckets for r in (f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*")]
    statement = {
        "Sid": "OnlyTheS3ActionsOfTheFourAccessLevels",
        "Effect": "Allow",
        "Action": sorted(BOUNDARY_ACTIONS),
        "Resource": resources,
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


def boundary_problems(document: dict[str, Any]) -> list[str]:
    """What is wrong with the boundary, statement by statement: what it allows beyond
    BOUNDARY_ACTIONS (Deny statements only narrow it), or the placeholder left where the
    grantable buckets go (every grant would be refused); empty when nothing."""
    problems = []
    for number, statement in enumerate(statements(document), start=1):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            problems.append(f"statement {number} allows by NotAction: everything it does not name")
            continue
        wider = sorted(set(listed(statement.get("Action", []))) - BOUNDARY_ACTIONS)
        if wider:
            problems.append(f"statement {number} allows {', '.join(wider)}")
        if any(BUCKETS_PLACEHOLDER in r for r in listed(statement.get("Resource", []))):
            problems.append(
                f"statement {number} still names {BUCKETS_PLACEHOLDER}: put the buckets the "
                "broker may grant there"
            )
    return problems


@dataclass(frozen=True)
class _Need:
    """An action a grant's policy allows on a bucket, or on every key under a prefix."""

    action: str
    arn: str
    # The keys under `arn` (bucket/prefix), not just `arn` itself.
    under: bool = False

    def __str__(self) -> str:
        return f"{self.action} on {self.arn}{'*' if self.under else ''}"


@dataclass(frozen=True)
class _Rule:
    """One statement of a boundary, as the admission check reads it."""

    allows: bool
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    # NotResource: the statement is about every resource but these.
    inverted: bool

    def is_about(self, action: str) -> bool:
        return any(wildcard(a.lower()).fullmatch(action.lower()) for a in self.actions)

    def covers(self, need: _Need) -> bool:
        """Whether the statement is about every resource the need names."""
        if self.inverted:
            return not any(_may_meet(pattern, need) for pattern in self.resources)
        return any(_covers(pattern, need) for pattern in self.resources)

    def touches(self, need: _Need) -> bool:
        """Whether the statement may be about some resource the need names."""
        if self.inverted:
            return not any(_covers(pattern, need) for pattern in self.resources)
        return any(_may_meet(pattern, need) for pattern in self.resources)


@dataclass(frozen=True)
class BoundaryReach:
    """What one account's boundary lets the broker's roles do, as read at start or on SIGHUP.
    Read the safe way where it cannot be decided: a Deny that may touch a grant cuts it, and the
    statements' conditions are not evaluated (an Allow counts, a Deny applies)."""

    rules: tuple[_Rule, ...]

    @classmethod
    def of(cls, document: dict[str, Any]) -> "BoundaryReach":
        return cls(tuple(_rule(s) for s in statements(document) if isinstance(s, dict)))

    def cuts(self, scope: GrantScope) -> list[str]:
        """What the grant's policy would allow that the boundary does not ("s3:GetObject on
        arn:aws:s3:::bucket/prefix*"): the instance would be refused it; empty when nothing."""
        return [str(need) for need in _needs(scope) if not self._lets(need)]

    def _lets(self, need: _Need) -> bool:
        about = [rule for rule in self.rules if rule.is_about(need.action)]
        denied = any(not rule.allows and rule.touches(need) for rule in about)
        return not denied and any(rule.allows and rule.covers(need) for rule in about)


# A boundary that can no longer be relied on: every grant in its account is refused.
REFUSES_ALL = BoundaryReach(())


@dataclass(frozen=True)
class Boundaries:
    """The boundaries read, by account key; an account whose boundary could not be read (AWS
    did not answer) is missing, and its grants are not checked against it."""

    reach: Mapping[str, BoundaryReach] = field(default_factory=dict)

    def check(self, account: Account, scope: GrantScope) -> None:
        """Refuses (OutsideBoundary) a grant the account's boundary would cut."""
        reach = self.reach.get(account.key)
        cuts = reach.cuts(scope) if reach is not None else []
        if cuts:
            raise OutsideBoundary(account.label, scope.bucket, cuts)


def _needs(scope: GrantScope) -> list[_Need]:
    """What the grant's policy allows (as broker.domain.policy builds it), unescaped."""
    bucket = f"arn:aws:s3:::{scope.bucket}"
    needs = [_Need(action, bucket) for action in BUCKET_ACTIONS[scope.access]]
    if scope.access in LISTS_BUCKET:
        needs.append(_Need("s3:ListBucket", bucket))
    objects = f"{bucket}/{scope.prefix}"
    return needs + [_Need(action, objects, under=True) for action in OBJECT_ACTIONS[scope.access]]


def _rule(statement: dict[str, Any]) -> _Rule:
    inverted = "NotResource" in statement
    resources = statement.get("NotResource" if inverted else "Resource", [])
    return _Rule(
        allows=statement.get("Effect") == "Allow",
        actions=tuple(listed(statement.get("Action", []))),
        resources=tuple(listed(resources)),
        inverted=inverted,
    )


def _covers(pattern: str, need: _Need) -> bool:
    """Whether the pattern matches every resource the need names. Under a prefix: a pattern
    ending in `*` that matches bucket/prefix matches everything after it too."""
    if need.under and not (pattern.endswith("*") and not pattern.endswith("${*}")):
        return False
    return wildcard(pattern).fullmatch(need.arn) is not None


def _may_meet(pattern: str, need: _Need) -> bool:
    """Whether the pattern may match some resource the need names (in doubt: yes)."""
    if not need.under:
        return wildcard(pattern).fullmatch(need.arn) is not None
    literal = _literal_start(pattern)
    return literal.startswith(need.arn) or need.arn.startswith(literal)


def _literal_start(pattern: str) -> str:
    """What every resource the pattern matches starts with."""
    start = pattern.split("*", 1)[0].split("?", 1)[0]
    return start.replace("${$}", "$").split("${", 1)[0]


def boundary_in(arn: str, account: str) -> str:
    """The boundary of the account (an account key: HOME_ACCOUNT or a spoke's id) given the home
    account's ARN: the policy of the same name in that account; "" for none."""
    if not arn or account == HOME_ACCOUNT:
        return arn
    # arn:PARTITION:iam::ACCOUNT:policy/PATH/NAME; the settings check that shape.
    parts = arn.split(":", 5)
    return ":".join([*parts[:4], account, parts[5]])
