"""The permissions boundary every role the broker creates carries (BROKER_PERMISSIONS_BOUNDARY_ARN,
deploy/iam/boundary-policy.json): whatever a role's own policy says, it can do no more than the
S3 actions of the four access levels, on the buckets the boundary names. The broker checks at
start that the boundary it is given allows nothing else, and puts it back on a role that lost it.

The boundary is one managed policy per account, named BOUNDARY_NAME: the broker's own IAM policy
lets it create roles and write their policies only when they carry a policy of that name, and a
spoke account's boundary is the policy of the same name in that account."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from broker.domain.errors import OutsideBoundary
from broker.domain.grants import GrantScope
from broker.domain.places import HOME_ACCOUNT
from broker.domain.policy import BUCKET_ACTIONS, OBJECT_ACTIONS, build_policy

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
    for number, statement in enumerate(_statements(document), start=1):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            problems.append(f"statement {number} allows by NotAction: everything it does not name")
            continue
        wider = sorted(set(_listed(statement.get("Action", []))) - BOUNDARY_ACTIONS)
        if wider:
            problems.append(f"statement {number} allows {', '.join(wider)}")
        if any(BUCKETS_PLACEHOLDER in r for r in _listed(statement.get("Resource", []))):
            problems.append(
                f"statement {number} still names {BUCKETS_PLACEHOLDER}: put the buckets the "
                "broker may grant there"
            )
    return problems


@dataclass(frozen=True)
class BoundaryReach:
    """What one account's boundary lets the broker's roles do, as read at start or on SIGHUP:
    each Allow statement's actions and resource patterns (its Deny statements, which only
    narrow, are not looked at)."""

    allows: tuple[tuple[frozenset[str], tuple[str, ...]], ...]

    @classmethod
    def of(cls, document: dict[str, Any]) -> "BoundaryReach":
        return cls(
            tuple(
                (frozenset(_listed(s.get("Action", []))), tuple(_listed(s.get("Resource", []))))
                for s in _statements(document)
                if isinstance(s, dict) and s.get("Effect") == "Allow"
            )
        )

    def cuts(self, scope: GrantScope) -> list[str]:
        """What the grant's policy would allow that the boundary does not ("s3:GetObject on
        arn:aws:s3:::bucket/prefix*"): the instance would be refused it; empty when nothing."""
        document = build_policy([scope]) or {"Statement": []}
        needed = [
            (action, resource)
            for statement in document["Statement"]
            for action in _listed(statement["Action"])
            for resource in _listed(statement["Resource"])
        ]
        return [f"{a} on {r}" for a, r in needed if not self._allows(a, r)]

    def _allows(self, action: str, resource: str) -> bool:
        # The policy's own resource pattern is matched as a string: a boundary pattern that
        # matches `bucket/prefix*` literally covers every key under the prefix.
        return any(
            action in actions and any(_wildcard(p).fullmatch(resource) for p in patterns)
            for actions, patterns in self.allows
        )


@dataclass(frozen=True)
class Boundaries:
    """The boundaries read, by account key; an account whose boundary could not be read (AWS
    did not answer) is missing, and its grants are not checked against it."""

    reach: Mapping[str, BoundaryReach] = field(default_factory=dict)

    def check(self, account: str, label: str, scope: GrantScope) -> None:
        """Refuses (OutsideBoundary) a grant the account's boundary would cut."""
        reach = self.reach.get(account)
        cuts = reach.cuts(scope) if reach is not None else []
        if cuts:
            raise OutsideBoundary(label, scope.bucket, cuts)


@lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters, `?` any one; the rest literally."""
    wildcards = {"*": ".*", "?": "."}
    return re.compile("".join(wildcards.get(c) or re.escape(c) for c in pattern), re.S)


def _statements(document: dict[str, Any]) -> list[Any]:
    """A policy's statements: IAM takes a single statement as well as a list."""
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def boundary_in(arn: str, account: str) -> str:
    """The boundary of the account (an account key: HOME_ACCOUNT or a spoke's id) given the home
    account's ARN: the policy of the same name in that account; "" for none."""
    if not arn or account == HOME_ACCOUNT:
        return arn
    # arn:PARTITION:iam::ACCOUNT:policy/PATH/NAME; the settings check that shape.
    parts = arn.split(":", 5)
    return ":".join([*parts[:4], account, parts[5]])
