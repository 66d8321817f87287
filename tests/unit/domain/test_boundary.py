"""The permissions boundary the broker is given may allow only the S3 actions of its four access
levels."""

import json
from pathlib import Path

import pytest

from broker.domain.access import Access
from broker.domain.boundary import (
    BOUNDARY_ACTIONS,
    BUCKETS_PLACEHOLDER,
    Boundaries,
    BoundaryReach,
    boundary_document,
    boundary_in,
    boundary_problems,
)
from broker.domain.errors import OutsideBoundary
from broker.domain.grants import GrantScope
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


TEAM = BoundaryReach.of(boundary_document(["team-*"]))


def test_a_grant_on_a_bucket_the_boundary_names_is_not_cut() -> None:
    for access in Access:
        assert TEAM.cuts(GrantScope("team-data", "reports/", access)) == []


def test_a_grant_on_another_bucket_is_cut_naming_each_action_and_resource() -> None:
    cuts = TEAM.cuts(GrantScope("payroll", "", Access.READ))

    assert sorted(cuts) == [
        "s3:GetObject on arn:aws:s3:::payroll/*",
        "s3:ListBucket on arn:aws:s3:::payroll",
    ]


def test_a_boundary_without_an_action_cuts_the_access_levels_that_need_it() -> None:
    no_delete = boundary_document(["team-*"])
    no_delete["Statement"][0]["Action"].remove("s3:DeleteObject")
    reach = BoundaryReach.of(no_delete)

    assert reach.cuts(GrantScope("team-data", "", Access.UPLOAD)) == []
    assert reach.cuts(GrantScope("team-data", "", Access.READ_WRITE)) == [
        "s3:DeleteObject on arn:aws:s3:::team-data/*"
    ]


def test_a_boundary_on_some_prefixes_cuts_a_grant_on_more() -> None:
    reports_only = {
        "Statement": {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::team-data", "arn:aws:s3:::team-data/reports/*"],
        }
    }
    reach = BoundaryReach.of(reports_only)

    assert reach.cuts(GrantScope("team-data", "reports/2026/", Access.READ)) == []
    assert reach.cuts(GrantScope("team-data", "", Access.READ)) == [
        "s3:GetObject on arn:aws:s3:::team-data/*"
    ]


def test_only_the_accounts_whose_boundary_was_read_are_checked() -> None:
    boundaries = Boundaries({HOME_ACCOUNT: TEAM})
    outside = GrantScope("payroll", "", Access.LIST)

    boundaries.check("222222222222", "prod", outside)  # not read: AWS did not answer
    with pytest.raises(OutsideBoundary) as refused:
        boundaries.check(HOME_ACCOUNT, "home", outside)

    assert refused.value.reason == "OUTSIDE_BOUNDARY"
    assert "account home" in str(refused.value)
    assert "s3:ListBucket on arn:aws:s3:::payroll" in str(refused.value)
    assert refused.value.metadata == {"account": "home", "bucket": "payroll"}
