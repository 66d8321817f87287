"""Guardrails: whatever produced a policy document, the broker puts none on a role that grants
more than its grants' scopes. Checked on the finished document, independently of how
broker.domain.policy builds it, so a bug there cannot widen access.

Every (action, resource) pair a statement allows must be one some grant's access level gives
on that grant's own resource: object actions on `bucket/prefix*`, bucket actions on the bucket.
Listing must carry an `s3:prefix` condition naming only granted prefixes, unless a grant lists
the whole bucket. Only plain Allow statements pass, with no other condition than the binding's
(IMDSv2 delivery, the instance's own VPC), which every statement must then carry exactly.
"""

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from broker.domain.errors import GuardrailViolation
from broker.domain.grants import GrantScope
from broker.domain.policy import (
    BUCKET_ACTIONS,
    LISTS_BUCKET,
    OBJECT_ACTIONS,
    UNBOUND,
    Binding,
    bucket_arn,
    list_pattern,
    object_arn,
)

LIST_BUCKET = "s3:ListBucket"
_PLAIN_KEYS = frozenset({"Sid", "Effect", "Action", "Resource"})


def check_guardrails(
    document: dict[str, Any] | None, scopes: Iterable[GrantScope], binding: Binding = UNBOUND
) -> None:
    """Raises GuardrailViolation, naming the first offence, unless `document` stays within."""
    if document is None:
        return
    scopes = list(scopes)
    pairs = _allowed_pairs(scopes)
    listing = _allowed_listing(scopes)
    for statement in document.get("Statement", []):
        _check_statement(_unbound(statement, binding), pairs, listing)


def _unbound(statement: dict[str, Any], binding: Binding) -> dict[str, Any]:
    """The statement without the binding's conditions, which it must carry exactly."""
    required = binding.conditions
    if not required:
        return statement
    condition = dict(statement.get("Condition") or {})
    for operator, keys in required.items():
        if condition.pop(operator, None) != keys:
            sid = statement.get("Sid", "?")
            raise GuardrailViolation(f"statement {sid} lacks the condition {operator} {keys}")
    unbound = {k: v for k, v in statement.items() if k != "Condition"}
    return {**unbound, "Condition": condition} if condition else unbound


def _allowed_pairs(scopes: list[GrantScope]) -> set[tuple[str, str]]:
    pairs = set()
    for s in scopes:
        pairs |= {(a, object_arn(s.bucket, s.prefix)) for a in OBJECT_ACTIONS[s.access]}
        pairs |= {(a, bucket_arn(s.bucket)) for a in BUCKET_ACTIONS[s.access]}
    return pairs


def _allowed_listing(scopes: list[GrantScope]) -> dict[str, set[str] | None]:
    """Per bucket ARN, the s3:prefix patterns listing may carry; None: the whole bucket."""
    listing: dict[str, set[str] | None] = defaultdict(set)
    for s in scopes:
        if s.access not in LISTS_BUCKET:
            continue
        arn, known = bucket_arn(s.bucket), listing[bucket_arn(s.bucket)]
        if s.prefix == "" or known is None:
            listing[arn] = None
        else:
            known.add(list_pattern(s.prefix))
    return listing


def _check_statement(
    statement: dict[str, Any],
    pairs: set[tuple[str, str]],
    listing: dict[str, set[str] | None],
) -> None:
    sid = statement.get("Sid", "?")
    if statement.get("Effect") != "Allow" or not set(statement) <= _PLAIN_KEYS | {"Condition"}:
        raise GuardrailViolation(f"statement {sid} is not a plain Allow")
    actions = _listed(statement.get("Action"), sid)
    resources = _listed(statement.get("Resource"), sid)
    if LIST_BUCKET in actions:
        if actions != [LIST_BUCKET]:
            raise GuardrailViolation(f"statement {sid} mixes listing with other actions")
        _check_listing(sid, resources, statement.get("Condition"), listing)
        return
    if "Condition" in statement:
        raise GuardrailViolation(f"statement {sid} has a condition the broker never writes")
    for action in actions:
        for resource in resources:
            if (action, resource) not in pairs:
                raise GuardrailViolation(
                    f"statement {sid} allows {action} on {resource}, which no grant gives"
                )


def _check_listing(
    sid: str, resources: list[str], condition: object, listing: dict[str, set[str] | None]
) -> None:
    patterns = _prefix_patterns(sid, condition)
    for resource in resources:
        if resource not in listing:
            raise GuardrailViolation(f"statement {sid} lists {resource}, which no grant lists")
        allowed = listing[resource]
        if allowed is None:
            continue  # a grant lists the whole bucket: any narrowing is fine
        if patterns is None or not patterns <= allowed:
            raise GuardrailViolation(
                f"statement {sid} lists {resource} beyond the granted prefixes"
            )


def _prefix_patterns(sid: str, condition: object) -> set[str] | None:
    """The s3:prefix patterns of a listing condition; None when there is no condition."""
    if condition is None:
        return None
    if not isinstance(condition, dict) or list(condition) != ["StringLike"]:
        raise GuardrailViolation(f"statement {sid} has a condition the broker never writes")
    like = condition["StringLike"]
    if not isinstance(like, dict) or list(like) != ["s3:prefix"]:
        raise GuardrailViolation(f"statement {sid} has a condition the broker never writes")
    return set(_listed(like["s3:prefix"], sid))


def _listed(value: object, sid: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
        return value
    raise GuardrailViolation(f"statement {sid} has an unexpected action or resource list {value!r}")
