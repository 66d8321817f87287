"""The permissions boundary the broker is given may allow only the S3 actions of its four access
levels."""

import json
from pathlib import Path

import pytest

from broker.domain.access import Access
from broker.domain.accounts import Account
from broker.domain.boundary import (
    BOUNDARY_ACTIONS,
    BUCKETS_PLACEHOLDER,
    REFUSES_ALL,
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
    prod = Account(id="222222222222", name="prod", regions=("us-east-1",), role_arn="arn:r")

    boundaries.check(prod, outside)  # not read: AWS did not answer
    with pytest.raises(OutsideBoundary) as refused:
        boundaries.check(Account(id="", name="home", regions=("us-east-1",)), outside)

    assert refused.value.reason == "OUTSIDE_BOUNDARY"
    assert "account home" in str(refused.value)
    assert "s3:ListBucket on arn:aws:s3:::payroll" in str(refused.value)
    assert refused.value.metadata == {"account": "home", "bucket": "payroll"}


def allowing(*resources: str) -> dict[str, object]:
    return {"Effect": "Allow", "Action": sorted(BOUNDARY_ACTIONS), "Resource": list(resources)}


def test_a_deny_that_may_touch_the_grant_cuts_it() -> None:
    payroll_denied = {"Effect": "Deny", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/pay*"}
    reach = BoundaryReach.of({"Statement": [allowing("*"), payroll_denied]})

    assert reach.cuts(GrantScope("b", "payroll/", Access.READ)) == [
        "s3:GetObject on arn:aws:s3:::b/payroll/*"
    ]
    assert reach.cuts(GrantScope("b", "", Access.READ)) == ["s3:GetObject on arn:aws:s3:::b/*"]
    assert reach.cuts(GrantScope("b", "reports/", Access.READ)) == []
    assert reach.cuts(GrantScope("b", "payroll/", Access.UPLOAD)) == []  # denies reading only


def test_a_pattern_must_cover_every_key_under_the_prefix() -> None:
    """`logs/202?` names keys of eight characters; the grant names every key under logs/202."""
    reach = BoundaryReach.of(
        {"Statement": [allowing("arn:aws:s3:::b", "arn:aws:s3:::b/logs/202?")]}
    )

    assert reach.cuts(GrantScope("b", "logs/202", Access.READ)) == [
        "s3:GetObject on arn:aws:s3:::b/logs/202*"
    ]


def test_literal_characters_are_matched_as_policies_escape_them() -> None:
    dollar = BoundaryReach.of(
        {"Statement": [allowing("arn:aws:s3:::b", "arn:aws:s3:::b/a${$}b/*")]}
    )

    assert dollar.cuts(GrantScope("b", "a$b/", Access.READ)) == []
    assert dollar.cuts(GrantScope("b", "ab/", Access.READ)) != []


def test_an_allow_by_not_resource_covers_what_it_does_not_name() -> None:
    except_payroll = {
        "Effect": "Allow",
        "Action": sorted(BOUNDARY_ACTIONS),
        "NotResource": ["arn:aws:s3:::payroll", "arn:aws:s3:::payroll/*"],
    }
    reach = BoundaryReach.of({"Statement": except_payroll})

    assert reach.cuts(GrantScope("team", "", Access.READ_WRITE)) == []
    assert reach.cuts(GrantScope("payroll", "", Access.LIST)) == [
        "s3:ListBucket on arn:aws:s3:::payroll"
    ]


def test_a_boundary_no_longer_relied_on_refuses_everything() -> None:
    assert REFUSES_ALL.cuts(GrantScope("team", "", Access.LIST)) == [
        "s3:ListBucket on arn:aws:s3:::team"
    ]
