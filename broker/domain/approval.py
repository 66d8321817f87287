"""Access that must be approved: what a policy rule asks for, and where a request stands.

A rule with `approval` admits a request only once `required` distinct approvers it names
(identities, globs allowed) have approved it. The request's own caller never counts, admins
included; an approver counts once however often they approve; an approver may shorten the
ttl the grant will get, never lengthen it. One denial ends the request, and so does its
timeout passing unanswered.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from broker.domain.durations import format_duration

# Characters that make a name a pattern (admins are named exactly, never by pattern).
GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class ApprovalRule:
    """A policy rule's `approval`: who may approve, how many must, how long a request waits."""

    approvers: tuple[str, ...]
    required: int = 1
    # None: the server's BROKER_APPROVAL_TIMEOUT.
    timeout: timedelta | None = None

    def describe(self) -> str:
        """Who must approve, in words: "2 of alice, bob, sre-*"."""
        return f"{self.required} of {', '.join(self.approvers)}"


@dataclass(frozen=True)
class Vote:
    """One approver's approval of a request."""

    approver: str
    at: datetime
    reason: str = ""
    # A shorter ttl the approver asked for; None: as requested.
    ttl: timedelta | None = None


@dataclass(frozen=True)
class Approval:
    """A request's approval as it stands: what the rule asked for when the request was made,
    the ttl the grant is to get, and the approvals so far, in order."""

    approvers: tuple[str, ...]
    required: int
    # The ttl the grant gets once approved (None: it does not expire), before any shortening.
    ttl: timedelta | None
    votes: tuple[Vote, ...] = ()

    @classmethod
    def asked_by(cls, rule: ApprovalRule, ttl: timedelta | None) -> "Approval":
        return cls(rule.approvers, rule.required, ttl)

    def may_decide(self, identity: str, requested_by: str) -> str | None:
        """Why `identity` may not approve or deny this request, or None if it may."""
        if identity == requested_by:
            return "the requester never approves or denies their own request"
        if not _named(identity, self.approvers):
            return f"{identity} is not an approver of this request ({', '.join(self.approvers)})"
        return None

    def has_voted(self, identity: str) -> bool:
        return any(vote.approver == identity for vote in self.votes)

    def under(self, rule: ApprovalRule) -> "Approval":
        """The approval as the policy in force now asks for it: its approvers and how many,
        the votes so far kept (only those of approvers it still names count)."""
        return replace(self, approvers=rule.approvers, required=rule.required)

    def ttl_problem(self, ttl: timedelta | None) -> str | None:
        """Why an approver may not ask for `ttl`, or None: only a shorter one is allowed."""
        if ttl is None or self.ttl is None or ttl <= self.ttl:
            return None
        return f"may only shorten the requested {format_duration(self.ttl)}, not lengthen it"

    def with_vote(self, vote: Vote) -> "Approval":
        return replace(self, votes=(*self.votes, vote))

    @property
    def is_complete(self) -> bool:
        """Enough distinct approvers it names have approved."""
        counted = [v for v in self.votes if _named(v.approver, self.approvers)]
        return len(counted) >= self.required

    def reachable_by(self, requested_by: str) -> bool:
        """Whether enough approvers other than the requester could ever approve: not when
        every approver is named exactly and too few of them are not the requester."""
        if any(GLOB_CHARACTERS & set(a) for a in self.approvers):
            return True
        return len(set(self.approvers) - {requested_by}) >= self.required

    @property
    def granted_ttl(self) -> timedelta | None:
        """The ttl the grant gets: the shortest of the request's and its approvers'."""
        asked = [t for t in (self.ttl, *(vote.ttl for vote in self.votes)) if t is not None]
        return min(asked) if asked else None


def _named(identity: str, approvers: tuple[str, ...]) -> bool:
    return any(fnmatchcase(identity, pattern) for pattern in approvers)
