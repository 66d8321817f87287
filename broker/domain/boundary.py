"""The permissions boundary every role the broker creates carries (BROKER_PERMISSIONS_BOUNDARY_ARN,
deploy/iam/boundary-policy.json): whatever a role's own policy says, it can do no more than the
S3 actions of the four access levels. The broker checks at start that the boundary it is given
allows nothing else."""

from typing import Any

from broker.domain.policy import BUCKET_ACTIONS, OBJECT_ACTIONS

# Every action an access level may grant (listing included): all a boundary may allow.
BOUNDARY_ACTIONS = frozenset(
    {
        "s3:ListBucket",
        *(a for actions in OBJECT_ACTIONS.values() for a in actions),
        *(a for actions in BUCKET_ACTIONS.values() for a in actions),
    }
)


def boundary_problems(document: dict[str, Any]) -> list[str]:
    """What the boundary allows beyond BOUNDARY_ACTIONS, statement by statement (Deny
    statements only narrow it); empty when nothing."""
    problems = []
    for number, statement in enumerate(document.get("Statement", []), start=1):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            problems.append(f"statement {number} allows by NotAction: everything it does not name")
            continue
        actions = statement.get("Action", [])
        wider = sorted(set([actions] if isinstance(actions, str) else actions) - BOUNDARY_ACTIONS)
        if wider:
            problems.append(f"statement {number} allows {', '.join(wider)}")
    return problems
