"""The permissions boundary the broker is given may allow only the S3 actions of its four access
levels."""

import json
from pathlib import Path

import pytest

from broker.domain.boundary import (
    BOUNDARY_ACTIONS,
    BUCKETS_PLACEHOLDER,
    boundary_document,
    boundary_in,
    boundary_problems,
)
from broker.domain.places import HOME_ACCOUNT

SHIPPED = Path(__file__).parents[3] / "deploy" / "iam" / "boundary-policy.json"


def test_the_shipped_boundary_allows_nothing_beyond_the_access_levels() -> None:
    filled_in = SHIPPED.read_text().replace(BUCKETS_PLACEHOLDER, "team-*")
    assert boundary_problems(json.loads(filled_in)) == []


def test_the_shipped_boundary_as_it_is_names_its_placeholder() -> None:
    [problem] = boundary_problems(json.loads(SHIPPED.read_text()))
    assert problem.startswith("statement 1 still names GRANTABLE_BUCKETS")


def test_a_single_statement_not_in_a_list_is_read_too() -> None:
    everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    assert boundary_problems({"Statement": everything}) == ["statement 1 allows *"]


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, "statement 1 allows *"),
        ({"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}, "statement 1 allows s3:*"),
        (
            {"Effect": "Allow", "Action": ["s3:GetObject", "iam:PassRole"], "Resource": "*"},
            "statement 1 allows iam:PassRole",
        ),
        (
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            "statement 1 allows by NotAction",
        ),
    ],
)
def test_anything_wider_is_named(statement: dict[str, object], problem: str) -> None:
    [found] = boundary_problems({"Version": "2012-10-17", "Statement": [statement]})

    assert found.startswith(problem)


def test_deny_statements_only_narrow_it() -> None:
    deny_all = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    allow = {"Effect": "Allow", "Action": sorted(BOUNDARY_ACTIONS), "Resource": "*"}

    assert boundary_problems({"Statement": [allow, deny_all]}) == []


def test_a_spokes_boundary_is_the_policy_of_the_same_path_and_name_in_that_account() -> None:
    home = "arn:aws:iam::111111111111:policy/platform/accessbroker-boundary"

    assert boundary_in(home, "222222222222") == (
        "arn:aws:iam::222222222222:policy/platform/accessbroker-boundary"
    )
    assert boundary_in(home, HOME_ACCOUNT) == home
    assert boundary_in("", "222222222222") == ""


def test_the_document_bounds_the_named_buckets_and_their_objects() -> None:
    [statement] = boundary_document(["team-*", "reports"])["Statement"]

    assert set(statement["Action"]) == BOUNDARY_ACTIONS
    assert statement["Resource"] == [
        "arn:aws:s3:::team-*",
        "arn:aws:s3:::team-*/*",
        "arn:aws:s3:::reports",
        "arn:aws:s3:::reports/*",
    ]
