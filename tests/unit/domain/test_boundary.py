"""The permissions boundary the broker is given may allow only the S3 actions of its four access
levels."""

import json
from pathlib import Path

import pytest

from broker.domain.boundary import BOUNDARY_ACTIONS, boundary_problems

SHIPPED = Path(__file__).parents[3] / "deploy" / "iam" / "boundary-policy.json"


def test_the_shipped_boundary_allows_nothing_beyond_the_access_levels() -> None:
    assert boundary_problems(json.loads(SHIPPED.read_text())) == []


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
