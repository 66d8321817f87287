"""A grant's approval as the `grants.approval` column holds it: JSON text, NULL for a grant that
needed none. JSON rather than a table of its own: it is read and written with its grant, always
whole, and never queried."""

import json
from datetime import datetime, timedelta
from typing import Any

from broker.domain.approval import Approval, Vote


def approval_text(approval: Approval | None) -> str | None:
    if approval is None:
        return None
    return json.dumps(
        {
            "approvers": list(approval.approvers),
            "required": approval.required,
            "ttl_seconds": _seconds(approval.ttl),
            "votes": [_vote_fields(vote) for vote in approval.votes],
        },
        sort_keys=True,
    )


def approval_of(text: str | None) -> Approval | None:
    if text is None:
        return None
    fields = json.loads(text)
    return Approval(
        approvers=tuple(fields["approvers"]),
        required=fields["required"],
        ttl=_duration(fields["ttl_seconds"]),
        votes=tuple(_vote(vote) for vote in fields["votes"]),
    )


def _vote_fields(vote: Vote) -> dict[str, Any]:
    return {
        "approver": vote.approver,
        "at": vote.at.isoformat(),
        "reason": vote.reason,
        "ttl_seconds": _seconds(vote.ttl),
    }


def _vote(fields: dict[str, Any]) -> Vote:
    return Vote(
        approver=fields["approver"],
        at=datetime.fromisoformat(fields["at"]),
        reason=fields["reason"],
        ttl=_duration(fields["ttl_seconds"]),
    )


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _duration(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)
