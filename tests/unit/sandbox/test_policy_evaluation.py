"""The emulator's policy evaluator decides as IAM documents it
(broker/sandbox/policy_evaluation.py)."""

import json
from collections.abc import Mapping
from typing import Any

import pytest

from broker.sandbox.policy_evaluation import (
    ContextValue,
    Decision,
    Request,
    UnsupportedPolicyElement,
    decide,
    decide_boundary,
)

ROLE = "arn:aws:iam::123456789012:role/accessbroker/accessbroker-web"
BOUNDARY = "arn:aws:iam::123456789012:policy/accessbroker-boundary"
OTHER_BOUNDARY = "arn:aws:iam::123456789012:policy/other"
BOUNDARY_PATTERN = "arn:aws:iam::*:policy/accessbroker-boundary"
KEY = "iam:PermissionsBoundary"
CREATE_ROLE = Request("iam:CreateRole", ROLE)


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str] = "iam:CreateRole", resource: str = "*", **extra: Any) -> Any:
    return {"Effect": "Allow", "Action": action, "Resource": resource} | extra


def deny(action: str = "iam:CreateRole", resource: str = "*", **extra: Any) -> Any:
    return {"Effect": "Deny", "Action": action, "Resource": resource} | extra


def allowed_when(condition: dict[str, Any], context: Mapping[str, ContextValue]) -> bool:
    """Whether CreateRole, in `context`, is allowed by one statement under `condition`."""
    request = Request("iam:CreateRole", ROLE, context)
    return decide(request, [policy(allow(Condition=condition))]) is Decision.ALLOWED


@pytest.mark.parametrize(
    ("operator", "holds"),
    [
        ("StringEquals", False),
        ("StringEqualsIgnoreCase", False),
        ("StringLike", False),
        ("ArnEquals", False),
        ("ArnLike", False),
        ("Bool", False),
        ("StringNotEquals", True),
        ("StringNotEqualsIgnoreCase", True),
        ("StringNotLike", True),
        ("ArnNotEquals", True),
        ("ArnNotLike", True),
        ("StringEqualsIfExists", True),
        ("StringLikeIfExists", True),
        ("ArnLikeIfExists", True),
        ("BoolIfExists", True),
        ("StringNotLikeIfExists", True),
    ],
)
def test_a_key_absent_from_the_context_fails_positive_operators_only(
    operator: str, holds: bool
) -> None:
    assert allowed_when({operator: {KEY: BOUNDARY_PATTERN}}, {}) is holds


@pytest.mark.parametrize(
    ("operator", "policy_values", "context_value", "holds"),
    [
        ("StringEquals", "abc", "abc", True),
        ("StringEquals", "abc", "ABC", False),
        ("StringEquals", ["x", "abc"], "abc", True),
        ("StringEquals", "abc", ["x", "abc"], True),
        ("StringNotEquals", ["x", "abc"], "abc", False),
        ("StringNotEquals", ["x", "y"], "abc", True),
        ("StringNotEquals", "abc", ["x", "abc"], False),
        ("StringEqualsIgnoreCase", "abc", "ABC", True),
        ("StringNotEqualsIgnoreCase", "abc", "ABC", False),
        ("StringLike", BOUNDARY_PATTERN, BOUNDARY, True),
        ("StringLike", BOUNDARY_PATTERN, OTHER_BOUNDARY, False),
        ("StringLike", "a?c", "abc", True),
        ("StringLike", "a?c", "abbc", False),
        ("StringLike", "a.c", "abc", False),
        ("StringLike", "abc", "ABC", False),
        ("StringNotLike", BOUNDARY_PATTERN, OTHER_BOUNDARY, True),
        ("StringNotLike", BOUNDARY_PATTERN, BOUNDARY, False),
        ("ArnLike", "arn:aws:iam::*:role/*", ROLE, True),
        ("ArnLike", "arn:aws:iam::*", ROLE, False),
        ("ArnEquals", "arn:aws:iam::*:role/accessbroker/*", ROLE, True),
        ("ArnEquals", "arn:aws:iam::*:role/team/*", ROLE, False),
        ("ArnNotLike", "arn:aws:iam::*:role/team/*", ROLE, True),
        ("ArnNotEquals", "arn:aws:iam::*:role/accessbroker/*", ROLE, False),
        ("Bool", "true", "true", True),
        ("Bool", True, "true", True),
        ("Bool", "false", "true", False),
        ("StringEqualsIfExists", "abc", "abd", False),
        ("StringNotEqualsIfExists", "abc", "abc", False),
        ("StringLikeIfExists", BOUNDARY_PATTERN, BOUNDARY, True),
    ],
)
def test_a_present_key_is_matched_by_the_operator(
    operator: str, policy_values: Any, context_value: ContextValue, holds: bool
) -> None:
    assert allowed_when({operator: {KEY: policy_values}}, {KEY: context_value}) is holds


@pytest.mark.parametrize(
    ("required", "context", "holds"),
    [
        ("true", {}, True),
        ("true", {KEY: BOUNDARY}, False),
        ("false", {}, False),
        ("false", {KEY: BOUNDARY}, True),
    ],
)
def test_null_checks_whether_the_key_is_absent(
    required: str, context: dict[str, ContextValue], holds: bool
) -> None:
    assert allowed_when({"Null": {KEY: required}}, context) is holds


def test_condition_key_names_are_case_insensitive() -> None:
    condition = {"StringEquals": {"IAM:ResourceTag/Team": "web"}}

    assert allowed_when(condition, {"iam:resourcetag/team": "web"})


def test_every_key_and_every_operator_must_hold() -> None:
    condition = {
        "StringEquals": {"iam:ResourceTag/team": "web", "iam:ResourceTag/env": "prod"},
        "StringLike": {KEY: BOUNDARY_PATTERN},
    }
    everything = {"iam:ResourceTag/team": "web", "iam:ResourceTag/env": "prod", KEY: BOUNDARY}

    assert allowed_when(condition, everything)
    for missing in everything:
        context = {key: value for key, value in everything.items() if key != missing}
        assert not allowed_when(condition, context), missing


@pytest.mark.parametrize(
    ("statement", "holds"),
    [
        (allow("IAM:createrole"), True),
        (allow("iam:Create*"), True),
        (allow("iam:?reateRole"), True),
        (allow("*"), True),
        (allow(["s3:GetObject", "iam:CreateRole"]), True),
        (allow("iam:Delete*"), False),
        (allow(resource="arn:aws:iam::*:role/accessbroker/*"), True),
        (allow(resource="arn:aws:iam::*:role/Accessbroker/*"), False),
        (allow(resource="arn:aws:iam::*:role/team/*"), False),
        ({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}, True),
        ({"Effect": "Allow", "NotAction": ["s3:*", "iam:*"], "Resource": "*"}, False),
        ({"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:iam::*:role/team/*"}, True),
        ({"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:iam::*:role/*"}, False),
    ],
)
def test_actions_and_resources_are_matched_with_wildcards(
    statement: dict[str, Any], holds: bool
) -> None:
    assert (decide(CREATE_ROLE, [policy(statement)]) is Decision.ALLOWED) is holds


def test_a_document_may_be_json_text_with_a_single_statement() -> None:
    document = json.dumps({"Version": "2012-10-17", "Statement": allow()})

    assert decide(CREATE_ROLE, [document]) is Decision.ALLOWED


def test_an_explicit_deny_in_any_policy_wins() -> None:
    assert decide(CREATE_ROLE, [policy(allow(), deny())]) is Decision.DENIED_BY_IDENTITY
    assert decide(CREATE_ROLE, [policy(allow()), policy(deny())]) is Decision.DENIED_BY_IDENTITY


def test_nothing_allowing_is_not_an_explicit_deny() -> None:
    assert decide(CREATE_ROLE, []) is Decision.NOT_ALLOWED_BY_IDENTITY
    assert decide(CREATE_ROLE, [policy(allow("iam:DeleteRole"))]) is (
        Decision.NOT_ALLOWED_BY_IDENTITY
    )


def test_a_failed_condition_on_an_allow_only_keeps_that_statement_out() -> None:
    conditioned = allow(Condition={"StringLike": {KEY: BOUNDARY_PATTERN}})

    assert decide(CREATE_ROLE, [policy(conditioned)]) is Decision.NOT_ALLOWED_BY_IDENTITY
    assert decide(CREATE_ROLE, [policy(conditioned, allow())]) is Decision.ALLOWED


@pytest.mark.parametrize(
    ("context", "decision"),
    [
        ({}, Decision.DENIED_BY_IDENTITY),
        ({KEY: OTHER_BOUNDARY}, Decision.DENIED_BY_IDENTITY),
        ({KEY: BOUNDARY}, Decision.ALLOWED),
    ],
)
def test_a_deny_unless_the_boundary_is_set_denies_without_one(
    context: dict[str, ContextValue], decision: Decision
) -> None:
    """The broker's own policy: Allow with StringLike, Deny with StringNotLike on the key."""
    broker = policy(
        allow(Condition={"StringLike": {KEY: BOUNDARY_PATTERN}}),
        deny(Condition={"StringNotLike": {KEY: BOUNDARY_PATTERN}}),
    )

    assert decide(Request("iam:CreateRole", ROLE, context), [broker]) is decision


@pytest.mark.parametrize(
    ("identity", "boundary", "decision"),
    [
        (allow(), allow(), Decision.ALLOWED),
        (allow(), allow("s3:GetObject"), Decision.NOT_ALLOWED_BY_BOUNDARY),
        (allow("s3:GetObject"), allow(), Decision.NOT_ALLOWED_BY_IDENTITY),
        (allow(), deny(), Decision.DENIED_BY_BOUNDARY),
        (deny(), allow(), Decision.DENIED_BY_IDENTITY),
    ],
)
def test_a_boundary_limits_the_identity_policies_and_never_grants(
    identity: dict[str, Any], boundary: dict[str, Any], decision: Decision
) -> None:
    assert decide(CREATE_ROLE, [policy(identity)], policy(boundary)) is decision


def test_a_boundary_statement_denies_even_beside_an_allow_all() -> None:
    boundary = policy(allow("*"), deny())

    assert decide(CREATE_ROLE, [policy(allow())], boundary) is Decision.DENIED_BY_BOUNDARY
    assert decide_boundary(CREATE_ROLE, boundary) is Decision.DENIED_BY_BOUNDARY
    assert decide_boundary(Request("s3:GetObject", "arn:aws:s3:::b/k"), boundary) is (
        Decision.ALLOWED
    )


@pytest.mark.parametrize(
    ("condition", "named"),
    [
        ({"NumericGreaterThanEquals": {"aws:MultiFactorAuthAge": "3"}}, "NumericGreaterThanEquals"),
        ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, "DateLessThan"),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, "IpAddress"),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": "team"}}, "ForAnyValue:StringEquals"),
        ({"NullIfExists": {KEY: "true"}}, "NullIfExists"),
        # A variable whose key the request lacks (StringLike: `failing` keeps its StringEquals).
        ({"StringLike": {"aws:username": "${aws:username}"}}, "${aws:username}"),
    ],
)
def test_what_it_cannot_evaluate_is_named_not_guessed(
    condition: dict[str, Any], named: str
) -> None:
    # The other condition fails: the outcome must not hide the one that cannot be evaluated.
    failing = {"StringEquals": {"iam:ResourceTag/team": "web"}}

    with pytest.raises(UnsupportedPolicyElement, match=named.replace("$", r"\$")):
        decide(CREATE_ROLE, [policy(allow(Condition=failing | condition))])


def test_a_policy_variable_in_a_condition_is_the_requests_value_of_that_key() -> None:
    own = "arn:aws:iam::${aws:PrincipalAccount}:policy/accessbroker-boundary"
    allowing = policy(allow(Condition={"StringEquals": {KEY: own}}))

    def creating(boundary_account: str) -> Request:
        boundary = f"arn:aws:iam::{boundary_account}:policy/accessbroker-boundary"
        context = {KEY: boundary, "aws:PrincipalAccount": "111122223333"}
        return Request(CREATE_ROLE.action, CREATE_ROLE.resource, context)

    assert decide(creating("111122223333"), [allowing]) is Decision.ALLOWED
    assert decide(creating("999988887777"), [allowing]) is Decision.NOT_ALLOWED_BY_IDENTITY


def test_a_policy_variable_in_a_resource_is_named() -> None:
    with pytest.raises(UnsupportedPolicyElement, match=r"\$\{aws:username\}"):
        decide(CREATE_ROLE, [policy(allow(resource="arn:aws:iam::*:role/${aws:username}"))])


def test_statements_about_other_actions_or_resources_are_not_looked_at() -> None:
    unknown = {"NumericLessThan": {"s3:max-keys": "10"}}
    elsewhere = policy(
        allow("s3:ListBucket", Condition=unknown),
        allow(resource="arn:aws:iam::*:role/team/*", Condition=unknown),
        allow("iam:CreateRole", resource=ROLE),
    )

    assert decide(CREATE_ROLE, [elsewhere]) is Decision.ALLOWED
