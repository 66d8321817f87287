"""Who may grant what: the rules of the access policy (BROKER_POLICY_FILE) and their decision.

Default deny: a request is allowed when no `deny_buckets` pattern matches its bucket (that
holds for admins too), and its caller is an admin or some rule matches identity, bucket,
access, prefix, instance tags and the instance's account with the ttl within the rule's
`max_ttl`. The rule that decides is the one that decides today (the first to admit the ttl);
when it has `approval`, the request is allowed only once approved (broker.domain.approval). A
rule with approval placed before a broader one without thus guards what it names. Patterns are
shell-style globs matched case-sensitively against the whole value (`*` also matches "/").
A rule's `prefixes` are matched against the grant's prefix itself, so only `*` (or no
`prefixes` at all) lets a caller have a whole bucket, whose prefix is "". A rule's `accounts`
are not patterns: each names one configured account exactly, by its id or its name.
"""

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase

from broker.domain.access import Access
from broker.domain.approval import ApprovalRule
from broker.domain.audit import ANONYMOUS_ACTOR, SYSTEM_ACTOR
from broker.domain.durations import format_duration
from broker.domain.grants import GrantScope

MAX_IDENTITY_CHARS = 256


@dataclass(frozen=True)
class Rule:
    """One entry of the policy's `rules`; `number` is its position there, from 1."""

    number: int
    identities: tuple[str, ...]
    buckets: tuple[str, ...]
    access: frozenset[Access]
    # None: any prefix, the whole bucket included.
    prefixes: tuple[str, ...] | None = None
    # The instance must carry every one of these tags with exactly this value.
    instance_tags: Mapping[str, str] = field(default_factory=dict)
    # None: as long as the server allows.
    max_ttl: timedelta | None = None
    # Set: what it allows needs this approval first.
    approval: ApprovalRule | None = None
    # The accounts (ids or names) the instance must live in; None: any configured account.
    accounts: tuple[str, ...] | None = None

    def is_for(self, identity: str) -> bool:
        return _any_match(identity, self.identities)

    def mismatch(self, request: "AccessRequest") -> str | None:
        """What of the request this rule does not allow (ttl aside), or None if it allows it."""
        scope = request.scope
        if self.accounts is not None and request.account.isdisjoint(self.accounts):
            return f"account {request.account_label} is not one of {', '.join(self.accounts)}"
        if not _any_match(scope.bucket, self.buckets):
            return f"bucket {scope.bucket} is not one of {', '.join(self.buckets)}"
        if scope.access not in self.access:
            allowed = ", ".join(sorted(a.value for a in self.access))
            return f"access {scope.access.value} is not one of {allowed}"
        if self.prefixes is not None and not _any_match(scope.prefix, self.prefixes):
            return f"prefix {scope.prefix!r} is not one of {', '.join(self.prefixes)}"
        missing = {k: v for k, v in self.instance_tags.items() if request.tags.get(k) != v}
        if missing:
            tags = ", ".join(f"{k}={v}" for k, v in sorted(missing.items()))
            return f"the instance does not carry the tags {tags}"
        return None

    def ttl_for(self, default: timedelta | None) -> timedelta | None:
        """The ttl of a grant asked for without one: the server's default, cut to the max."""
        if self.max_ttl is None:
            return default
        return self.max_ttl if default is None else min(default, self.max_ttl)

    def admits(self, ttl: timedelta) -> bool:
        return self.max_ttl is None or ttl <= self.max_ttl


@dataclass(frozen=True)
class AccessPolicy:
    admins: frozenset[str] = frozenset()
    deny_buckets: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    # Callers that may act on behalf of a person they name (a web app); named exactly.
    delegates: frozenset[str] = frozenset()
    # Only without a policy file in auth mode `none`: every caller may do everything.
    unrestricted: bool = False

    def is_admin(self, identity: str) -> bool:
        return self.unrestricted or identity in self.admins

    def may_act_on(self, identity: str, requested_by: str) -> bool:
        """Whether `identity` may see, extend or revoke a grant `requested_by` asked for."""
        return identity == requested_by or self.is_admin(identity)

    @property
    def reads_instance_tags(self) -> bool:
        return any(rule.instance_tags for rule in self.rules)


# The policy without a policy file in auth mode `none`.
UNRESTRICTED = AccessPolicy(unrestricted=True)


@dataclass(frozen=True)
class AccessRequest:
    """A grant (or an extension) as the policy sees it."""

    identity: str
    scope: GrantScope
    # The instance's tags; only read when some rule names tags.
    tags: Mapping[str, str]
    # As the caller asked; None when it asked for none.
    ttl: timedelta | None
    # What the server gives a grant asked for without a ttl (None: it does not expire).
    default_ttl: timedelta | None = None
    # The aliases (Account.aliases: its id and its name) of the account the instance lives in.
    account: frozenset[str] = frozenset()
    # That account's name, for reasons; "" when not known.
    account_name: str = ""

    @property
    def account_label(self) -> str:
        """The instance's account as a reason names it: its name, else what is known of it."""
        return self.account_name or ", ".join(sorted(self.account)) or "(unknown)"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # Why, in words: what allowed it, or what refused it.
    reason: str
    # The number of the rule that allowed it; 0 when none did (refused, or an admin's).
    rule: int = 0
    # The ttl the grant gets when allowed (None: it does not expire).
    ttl: timedelta | None = None
    # Set when allowed only once approved, as the allowing rule says.
    approval: ApprovalRule | None = None


def decide(policy: AccessPolicy, request: AccessRequest) -> Decision:
    """Whether the policy allows the request, and why; pure, and the same for the same input."""
    bucket = request.scope.bucket
    denied_by = next((p for p in policy.deny_buckets if fnmatchcase(bucket, p)), None)
    if denied_by is not None:
        return Decision(False, f"bucket {bucket} is denied by {denied_by!r}")
    ttl = request.ttl if request.ttl is not None else request.default_ttl
    if policy.unrestricted:
        return Decision(True, "no access policy is configured: anyone may do anything", 0, ttl)
    if policy.is_admin(request.identity):
        return Decision(True, f"{request.identity} is an admin", 0, ttl)
    own_rules = [rule for rule in policy.rules if rule.is_for(request.identity)]
    if not own_rules:
        return Decision(False, f"no rule matched: no rule is for identity {request.identity}")
    mismatches = [(rule, rule.mismatch(request)) for rule in own_rules]
    matching = [rule for rule, why in mismatches if why is None]
    if not matching:
        reasons = "; ".join(f"rule {rule.number}: {why}" for rule, why in mismatches)
        return Decision(False, f"no rule matched: {reasons}")
    return _within_ttl(matching, request)


def _within_ttl(matching: list[Rule], request: AccessRequest) -> Decision:
    """A ttl asked for must be within a matching rule's max: a request for more is refused
    rather than silently shortened. Without one, the grant gets the longest any matching rule
    allows (the server's default, cut to the rule's max), never "no expiry" past a max."""
    if request.ttl is None:
        rule = max(matching, key=lambda r: _sortable(r.ttl_for(request.default_ttl)))
        return _allowed_by(rule, rule.ttl_for(request.default_ttl))
    within = next((rule for rule in matching if rule.admits(request.ttl)), None)
    if within is not None:
        return _allowed_by(within, request.ttl)
    longest = max(matching, key=lambda r: _sortable(r.max_ttl))
    assert longest.max_ttl is not None, "a rule without a max admits every ttl"
    return Decision(
        False,
        f"ttl {format_duration(request.ttl)} is over the rule's max of "
        f"{format_duration(longest.max_ttl)} (rule {longest.number})",
    )


def _allowed_by(rule: Rule, ttl: timedelta | None) -> Decision:
    if rule.approval is None:
        return Decision(True, f"allowed by rule {rule.number}", rule.number, ttl)
    reason = f"allowed by rule {rule.number} once approved by {rule.approval.describe()}"
    return Decision(True, reason, rule.number, ttl, rule.approval)


def _sortable(ttl: timedelta | None) -> tuple[bool, timedelta]:
    """Orders ttls with None (no expiry) as the longest."""
    return (ttl is None, ttl or timedelta(0))


def _any_match(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def identity_problems(identity: str) -> list[str]:
    """Problems of a caller's name (from a tokens file, a certificate, or a request)."""
    if not identity.strip():
        return ["must not be empty"]
    problems = []
    if len(identity) > MAX_IDENTITY_CHARS:
        problems.append(f"must be at most {MAX_IDENTITY_CHARS} characters")
    if identity != identity.strip():
        problems.append("must not start or end with white space")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in identity):
        problems.append("must not contain control characters")
    return problems


def credential_identity_problems(identity: str) -> list[str]:
    """Problems of the identity a token or a certificate proves: also none of the broker's own
    names, which a caller holding one could pass for in the audit trail. (Rules and questions
    may name them: in auth mode none every caller is anonymous.)"""
    problems = identity_problems(identity)
    if identity in (SYSTEM_ACTOR, ANONYMOUS_ACTOR):
        problems.append(f"{identity!r} is reserved for the broker itself")
    return problems
