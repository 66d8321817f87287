"""BROKER_POLICY_FILE: the access policy, YAML, read into broker.domain.authorization's terms.

```yaml
admins: [platform-admin]            # may do everything, including revoking others' grants
delegates: [accessbroker-web]       # may act on behalf of a person they name (the web app)
deny_buckets: ["audit-*", "*-logs"] # nobody gets these, admins included
rules:
  - identities: [svc-ci, "team-data-*"]
    buckets: ["ci-*", "data-*"]
    access: [upload, read]
    prefixes: ["builds/*"]          # optional; absent means any prefix
    instance_tags: {team: data}     # optional; the instance must carry these tags
    accounts: [dev, "222222222222"] # optional; the instance must live in one of these
                                    # (BROKER_ACCOUNTS_FILE's names or ids, exactly, no globs)
    max_ttl: 24h                    # optional
    approval:                       # optional: granted only once approved
      approvers: [alice, "sre-*"]   # identities, globs allowed; never the requester
      required: 2                   # distinct approvers (default 1)
      timeout: 24h                  # lapses unanswered after (default BROKER_APPROVAL_TIMEOUT)
```
Anything else in the file (an unknown key, a misspelt access level) is refused: a typo must
not quietly widen or narrow what callers may do.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

from broker.adapters.config.accounts_file import account_reference_problem
from broker.adapters.config.yaml_file import (
    check_keys,
    mapping,
    read_yaml_mapping,
    string_list,
)
from broker.domain.access import Access
from broker.domain.approval import GLOB_CHARACTERS, ApprovalRule
from broker.domain.authorization import AccessPolicy, Rule, identity_problems
from broker.domain.durations import parse_duration
from broker.domain.validation import MAX_TTL
from broker.settings import ConfigurationError

WHAT = "policy file"
_RULE_KEYS = (
    "identities",
    "buckets",
    "access",
    "prefixes",
    "instance_tags",
    "accounts",
    "max_ttl",
    "approval",
)
_APPROVAL_KEYS = ("approvers", "required", "timeout")
_ACCESS_NAMES = ", ".join(a.value for a in Access)


def load_policy_file(path: Path) -> AccessPolicy:
    """The file's policy; raises ConfigurationError naming the first problem and where."""
    data = read_yaml_mapping(path, WHAT)
    where = f"{WHAT} {path}"
    check_keys(data, where, allowed=("admins", "delegates", "deny_buckets", "rules"))
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise ConfigurationError(f"{where}: rules must be a list")
    return AccessPolicy(
        admins=frozenset(_named_exactly(data.get("admins", []), f"{where}: admins")),
        delegates=frozenset(_named_exactly(data.get("delegates", []), f"{where}: delegates")),
        deny_buckets=_optional_list(data.get("deny_buckets", []), f"{where}: deny_buckets"),
        rules=tuple(_rule(n, entry, f"{where}: rule {n}") for n, entry in enumerate(rules, 1)),
    )


def _optional_list(value: object, where: str) -> tuple[str, ...]:
    return string_list(value, where) if value != [] else ()


def _named_exactly(value: object, where: str) -> tuple[str, ...]:
    """Admins and delegates are named exactly: a pattern would hand their powers to whoever
    matches it."""
    names = _optional_list(value, where)
    for name in names:
        if GLOB_CHARACTERS & set(name):
            raise ConfigurationError(f"{where}: {name!r} is a pattern; name each one exactly")
        if problems := identity_problems(name):
            raise ConfigurationError(f"{where}: {name!r} {'; '.join(problems)}")
    return names


def _rule(number: int, entry: Any, where: str) -> Rule:
    entry = mapping(entry, where)
    check_keys(entry, where, allowed=_RULE_KEYS, required=("identities", "buckets", "access"))
    prefixes = entry.get("prefixes")
    # Present but empty is refused: `accounts:` must not read as "any account".
    accounts = _accounts(entry["accounts"], f"{where}: accounts") if "accounts" in entry else None
    return Rule(
        number=number,
        identities=string_list(entry["identities"], f"{where}: identities"),
        buckets=string_list(entry["buckets"], f"{where}: buckets"),
        access=_access(entry["access"], f"{where}: access"),
        prefixes=None if prefixes is None else string_list(prefixes, f"{where}: prefixes"),
        instance_tags=_tags(entry.get("instance_tags", {}), f"{where}: instance_tags"),
        accounts=accounts,
        max_ttl=_duration(entry.get("max_ttl"), f"{where}: max_ttl"),
        approval=_approval(entry.get("approval"), f"{where}: approval"),
    )


def _accounts(value: object, where: str) -> tuple[str, ...]:
    """Accounts are named exactly, by id or name: a pattern could take in an account added to
    the accounts file later."""
    if not isinstance(value, list) or not value:
        raise ConfigurationError(f"{where}: must be a non-empty list")
    for name in value:
        if isinstance(name, str) and GLOB_CHARACTERS & set(name):
            raise ConfigurationError(
                f"{where}: {name!r} is a pattern; name each account exactly, by id or name"
            )
        if problem := account_reference_problem(name):
            raise ConfigurationError(f"{where}: {problem}")
    return tuple(value)


def _approval(value: object, where: str) -> ApprovalRule | None:
    if value is None:
        return None
    entry = mapping(value, where)
    check_keys(entry, where, allowed=_APPROVAL_KEYS, required=("approvers",))
    approvers = string_list(entry["approvers"], f"{where}: approvers")
    required = entry.get("required", 1)
    if isinstance(required, bool) or not isinstance(required, int) or required < 1:
        raise ConfigurationError(f"{where}: required must be a whole number, at least 1")
    named = [a for a in approvers if not GLOB_CHARACTERS & set(a)]
    if len(named) == len(approvers) and required > len(set(named)):
        raise ConfigurationError(
            f"{where}: required is {required}, but only {len(set(named))} approvers are named"
        )
    timeout = _duration(entry.get("timeout"), f"{where}: timeout")
    return ApprovalRule(approvers, required, timeout)


def _access(value: object, where: str) -> frozenset[Access]:
    levels = set()
    for name in string_list(value, where):
        try:
            levels.add(Access(name))
        except ValueError:
            raise ConfigurationError(
                f"{where}: unknown access {name!r} (expected {_ACCESS_NAMES})"
            ) from None
    return frozenset(levels)


def _tags(value: object, where: str) -> dict[str, str]:
    tags = mapping(value, where)
    for key, tag_value in tags.items():
        if not isinstance(key, str) or not isinstance(tag_value, str):
            raise ConfigurationError(
                f"{where}: keys and values must be strings (quote values such as 1 or true)"
            )
    return tags


def _duration(value: object, where: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{where}: must be a duration such as 90s, 15m, 8h or 2d")
    try:
        ttl = parse_duration(value)
    except ValueError as error:
        raise ConfigurationError(f"{where}: {error}") from None
    if ttl > MAX_TTL:
        raise ConfigurationError(f"{where}: must be at most {MAX_TTL.days} days")
    return ttl
