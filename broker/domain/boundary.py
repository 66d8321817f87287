"""The permissions boundary every role the broker creates carries (BROKER_PERMISSIONS_BOUNDARY_ARN,
deploy/iam/boundary-policy.json): whatever a role's own policy says, it can do no more than the
S3 actions of the four access levels, on the buckets the boundary names. The broker checks at
start that the boundary it is given allows nothing else, and puts it back on a role that lost it.

The boundary is one managed policy per account, named BOUNDARY_NAME: the broker's own IAM policy
lets it create roles and write their policies only when they carry a policy of that name, and a
spoke account's boundary is the policy of the same name in that account."""

from collections.abc import Sequence
from typing import Any

from broker.domain.places import HOME_ACCOUNT
from broker.domain.policy import BUCKET_ACTIONS, OBJECT_ACTIONS

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
