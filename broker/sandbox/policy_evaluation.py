"""IAM's evaluation of identity policies and a permissions boundary, within one account.

The emulator's authorization (`broker.sandbox.authorization`) asks `decide` whether a request
is allowed; this module knows nothing of moto, so its semantics are unit-tested on their own.

What is evaluated, as IAM documents it:
- documents as JSON text or already parsed; Statement a list or a single statement;
- Action / NotAction, matched case-insensitively, and Resource / NotResource, matched
  case-sensitively, each a string or a list, with the wildcards `*` and `?`;
- Condition: String(Not)Equals, String(Not)EqualsIgnoreCase, String(Not)Like, ArnEquals,
  ArnLike, ArnNotEquals, ArnNotLike, Bool and Null, each but Null also with the IfExists
  suffix. Several values under one key match if any of them matches (a negated
  operator: if none does); several keys and several operators must all hold. Condition key
  names are case-insensitive, as in IAM. A context value is a string or a list of strings; a
  list matches when any of its strings does (negated: when none does);
- the decision: an applicable Deny in any policy, the boundary included, refuses; otherwise
  the request is allowed only if an identity policy allows it and, when the principal has a
  permissions boundary, the boundary allows it too (a boundary never grants on its own).

Policy variables (`${aws:PrincipalAccount}`) in condition values are replaced by the request
context's value of that key, as IAM does; one whose key the context lacks, or that appears in a
Resource, is not evaluated. Nor are the other condition operators (Numeric*, Date*, IpAddress,
Binary*, the set operators ForAnyValue: / ForAllValues:). A statement that applies to the
request and uses one raises `UnsupportedPolicyElement` instead of being guessed at;
statements about other actions or resources are never looked at, so a policy using them
elsewhere still works. Resource-based policies, session policies and SCPs are out of scope.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from broker.domain.iam_patterns import listed, statements, wildcard

Document = str | Mapping[str, Any]
ContextValue = str | Sequence[str]

_IF_EXISTS = "IfExists"
_POLICY_VARIABLE = "${"
_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_ARN_COMPONENTS = 6


class UnsupportedPolicyElement(Exception):
    """A statement that applies to the request uses something this evaluator cannot evaluate."""


class Decision(Enum):
    ALLOWED = auto()
    DENIED_BY_IDENTITY = auto()
    DENIED_BY_BOUNDARY = auto()
    NOT_ALLOWED_BY_IDENTITY = auto()
    NOT_ALLOWED_BY_BOUNDARY = auto()


@dataclass(frozen=True)
class Request:
    """An action on a resource, in a context of condition keys."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


def decide(
    request: Request, identity_policies: Iterable[Document], boundary: Document | None = None
) -> Decision:
    """IAM's decision for a principal holding the identity policies, within the boundary when
    it has one."""
    identity = _applicable_effects(identity_policies, request)
    if "Deny" in identity:
        return Decision.DENIED_BY_IDENTITY
    within_boundary = Decision.ALLOWED if boundary is None else decide_boundary(request, boundary)
    if within_boundary is Decision.DENIED_BY_BOUNDARY:
        return within_boundary
    if "Allow" not in identity:
        return Decision.NOT_ALLOWED_BY_IDENTITY
    return within_boundary


def decide_boundary(request: Request, boundary: Document) -> Decision:
    """The boundary's part of the decision: ALLOWED means it lets the request through."""
    effects = _applicable_effects([boundary], request)
    if "Deny" in effects:
        return Decision.DENIED_BY_BOUNDARY
    return Decision.ALLOWED if "Allow" in effects else Decision.NOT_ALLOWED_BY_BOUNDARY


def _applicable_effects(policies: Iterable[Document], request: Request) -> set[str]:
    """The Effects of the statements that apply to the request."""
    context = {key.lower(): listed(value) for key, value in request.context.items()}
    return {
        _effect(statement)
        for policy in policies
        for statement in _statements(policy)
        if _applies(statement, request, context)
    }


def _statements(policy: Document) -> list[Mapping[str, Any]]:
    return statements(json.loads(policy) if isinstance(policy, str) else policy)


def _effect(statement: Mapping[str, Any]) -> str:
    effect = statement.get("Effect")
    if effect not in {"Allow", "Deny"}:
        raise UnsupportedPolicyElement(f"statement Effect {effect!r} is neither Allow nor Deny")
    return str(effect)


def _applies(
    statement: Mapping[str, Any], request: Request, context: Mapping[str, tuple[str, ...]]
) -> bool:
    # Conditions last: an operator this module does not know only matters in a statement that
    # is about the request.
    return (
        _matches_element(statement, "Action", request.action.lower(), _action_pattern)
        and _matches_element(statement, "Resource", request.resource, _resource_pattern)
        and _conditions_hold(statement.get("Condition", {}), context)
    )


def _matches_element(
    statement: Mapping[str, Any],
    element: str,
    value: str,
    pattern_of: Callable[[str], re.Pattern[str]],
) -> bool:
    """Whether `value` is covered by the statement's `element` (or left out by Not`element`)."""
    if element in statement:
        return _any_matches(statement[element], value, pattern_of)
    if f"Not{element}" in statement:
        return not _any_matches(statement[f"Not{element}"], value, pattern_of)
    raise UnsupportedPolicyElement(f"statement has neither {element} nor Not{element}")


def _any_matches(
    patterns: str | Sequence[str], value: str, pattern_of: Callable[[str], re.Pattern[str]]
) -> bool:
    return any(pattern_of(pattern).fullmatch(value) for pattern in listed(patterns))


def _action_pattern(pattern: str) -> re.Pattern[str]:
    return wildcard(pattern.lower())


def _resource_pattern(pattern: str) -> re.Pattern[str]:
    _refuse_policy_variables(pattern)
    return wildcard(pattern)


def _conditions_hold(
    condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, tuple[str, ...]]
) -> bool:
    tests = [
        (operator, key, _substituted(_policy_values(values), context))
        for operator, keys in condition.items()
        for key, values in keys.items()
    ]
    # All checked before any is evaluated: whether an unknown operator is reported must not
    # depend on the order of the others.
    for operator, key, values in tests:
        _check_supported(operator, key, values)
    return all(
        _operator_holds(operator, values, context.get(key.lower(), ()))
        for operator, key, values in tests
    )


def _check_supported(operator: str, key: str, policy_values: tuple[str, ...]) -> None:
    if operator != "Null" and _split_if_exists(operator)[0] not in _OPERATORS:
        raise UnsupportedPolicyElement(
            f"the emulator does not evaluate the condition operator {operator} (on {key})"
        )
    for value in policy_values:
        _refuse_policy_variables(value)


def _operator_holds(
    operator: str, policy_values: tuple[str, ...], context_values: tuple[str, ...]
) -> bool:
    if operator == "Null":
        # "true": the key must be absent from the request context; "false": present.
        return any((value.lower() == "true") == (not context_values) for value in policy_values)
    base, if_exists = _split_if_exists(operator)
    negated, match = _OPERATORS[base]
    if not context_values:
        # IAM: a key absent from the request context matches no value, so the condition is
        # false, and true for an operator that requires the key not to match (StringNotLike,
        # ArnNotLike, ...); ...IfExists holds whenever the key is absent. (IAM User Guide,
        # "IAM JSON policy elements: Condition operators".)
        return if_exists or negated
    matched = any(match(policy, actual) for policy in policy_values for actual in context_values)
    return matched != negated


def _substituted(
    values: tuple[str, ...], context: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """The values with each `${key}` replaced by the context's single value of that key; one
    the context lacks (or holds several values of) is left for _check_supported to refuse."""

    def value_of(variable: re.Match[str]) -> str:
        found = context.get(variable.group(1).lower(), ())
        return found[0] if len(found) == 1 else variable.group(0)

    return tuple(_VARIABLE.sub(value_of, value) for value in values)


def _split_if_exists(operator: str) -> tuple[str, bool]:
    if operator.endswith(_IF_EXISTS):
        return operator.removesuffix(_IF_EXISTS), True
    return operator, False


def _policy_values(values: Any) -> tuple[str, ...]:
    """A condition's values as strings; JSON booleans as IAM reads them ("true", "false")."""
    listed = values if isinstance(values, list) else [values]
    return tuple(json.dumps(value) if isinstance(value, bool) else str(value) for value in listed)


def _refuse_policy_variables(value: str) -> None:
    if _POLICY_VARIABLE in value:
        raise UnsupportedPolicyElement(
            f"the emulator has no value for the policy variable in: {value}"
        )


def _string_like(pattern: str, value: str) -> bool:
    return wildcard(pattern).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """Each of the six colon-separated components matched on its own, so `*` never spans one."""
    patterns, values = pattern.split(":", 5), value.split(":", 5)
    return len(patterns) == len(values) == _ARN_COMPONENTS and all(
        _string_like(part, actual) for part, actual in zip(patterns, values, strict=True)
    )


def _equals(policy: str, actual: str) -> bool:
    return policy == actual


def _equals_ignoring_case(policy: str, actual: str) -> bool:
    return policy.lower() == actual.lower()


# The operator without IfExists -> (whether it is negated, how one policy value matches one
# context value). IAM's ArnEquals takes wildcards just as ArnLike does.
_OPERATORS: Mapping[str, tuple[bool, Callable[[str, str], bool]]] = {
    "StringEquals": (False, _equals),
    "StringNotEquals": (True, _equals),
    "StringEqualsIgnoreCase": (False, _equals_ignoring_case),
    "StringNotEqualsIgnoreCase": (True, _equals_ignoring_case),
    "StringLike": (False, _string_like),
    "StringNotLike": (True, _string_like),
    "ArnEquals": (False, _arn_like),
    "ArnLike": (False, _arn_like),
    "ArnNotEquals": (True, _arn_like),
    "ArnNotLike": (True, _arn_like),
    "Bool": (False, _equals_ignoring_case),
}
