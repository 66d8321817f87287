"""check_guardrails: a document granting anything beyond its grants' scopes is refused."""

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.access import Access
from broker.domain.errors import GuardrailViolation
from broker.domain.grants import GrantScope
from broker.domain.guardrails import check_guardrails
from broker.domain.policy import build_policy

SCOPES = [
    GrantScope("photos", "up/", Access.READ_WRITE),
    GrantScope("logs-archive", "", Access.LIST),
]

scopes = st.lists(
    st.builds(
        GrantScope,
        st.sampled_from(["photos", "reports", "a.b-c"]),
        st.sampled_from(["", "up/", "up/deeper/", "x$y/", "*"]),
        st.sampled_from(list(Access)),
    ),
    min_size=1,
    max_size=6,
)


def document() -> dict[str, Any]:
    built = build_policy(SCOPES)
    assert built is not None
    return copy.deepcopy(built)


@given(scopes)
def test_every_document_the_broker_builds_passes(grants: list[GrantScope]) -> None:
    check_guardrails(build_policy(grants), grants)


def test_no_document_passes() -> None:
    check_guardrails(None, [])


def statement_with(**changes: Any) -> dict[str, Any]:
    doc = document()
    doc["Statement"][0].update(changes)
    return doc


@pytest.mark.parametrize(
    ("doc", "offence"),
    [
        (statement_with(Action=["s3:*"]), "allows s3:*"),
        (statement_with(Action="*"), "allows *"),
        (statement_with(Action=["s3:Get*"]), "allows s3:Get*"),
        (statement_with(Action=["iam:PassRole"]), "allows iam:PassRole"),
        (statement_with(Resource=["arn:aws:s3:::photos/*"]), "on arn:aws:s3:::photos/*"),
        (statement_with(Resource=["arn:aws:s3:::other/up/*"]), "on arn:aws:s3:::other"),
        (statement_with(Resource="*"), "on *"),
        (statement_with(Effect="Deny"), "not a plain Allow"),
        (statement_with(NotAction=["s3:GetObject"]), "not a plain Allow"),
        (statement_with(Resource=[]), "unexpected action or resource list"),
    ],
)
def test_a_wider_document_is_refused_naming_why(doc: dict[str, Any], offence: str) -> None:
    with pytest.raises(GuardrailViolation, match="statement .*" + offence.replace("*", r"\*")):
        check_guardrails(doc, SCOPES)


def test_object_actions_may_not_be_aimed_at_the_bucket_or_the_reverse() -> None:
    doc = document()
    objects = next(s for s in doc["Statement"] if "s3:GetObject" in s["Action"])
    objects["Resource"] = ["arn:aws:s3:::photos"]
    with pytest.raises(GuardrailViolation, match="on arn:aws:s3:::photos, which no grant gives"):
        check_guardrails(doc, SCOPES)


def test_a_document_for_other_grants_is_refused() -> None:
    with pytest.raises(GuardrailViolation):
        check_guardrails(document(), [GrantScope("photos", "up/deeper/", Access.READ)])


def listing_of(doc: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in doc["Statement"] if "s3:ListBucket" in s["Action"])


def test_listing_without_its_prefix_condition_is_refused() -> None:
    doc = document()
    listing = next(
        s for s in doc["Statement"] if s.get("Condition") and "s3:ListBucket" in s["Action"]
    )
    del listing["Condition"]
    with pytest.raises(GuardrailViolation, match="lists arn:aws:s3:::photos beyond the granted"):
        check_guardrails(doc, SCOPES)


@pytest.mark.parametrize(
    "condition",
    [
        {"StringLike": {"s3:prefix": ["*"]}},
        {"StringLike": {"s3:prefix": ["up/*", "down/*"]}},
        {"StringLike": {"s3:delimiter": ["/"]}},
        {"StringEquals": {"s3:prefix": ["up/"]}},
    ],
)
def test_listing_wider_than_the_granted_prefixes_is_refused(condition: dict[str, Any]) -> None:
    doc = build_policy([GrantScope("photos", "up/", Access.READ)])
    assert doc is not None
    listing_of(doc)["Condition"] = condition
    with pytest.raises(GuardrailViolation):
        check_guardrails(doc, [GrantScope("photos", "up/", Access.READ)])


def test_a_whole_bucket_listing_grant_allows_listing_without_condition() -> None:
    grants = [GrantScope("photos", "", Access.LIST)]
    doc = build_policy(grants)
    assert doc is not None and "Condition" not in listing_of(doc)
    check_guardrails(doc, grants)


def test_an_access_level_cannot_borrow_anothers_actions_on_a_shared_resource() -> None:
    grants = [GrantScope("photos", "x/", Access.READ), GrantScope("photos", "y/", Access.UPLOAD)]
    doc = build_policy(grants)
    assert doc is not None
    reads = next(s for s in doc["Statement"] if s["Action"] == ["s3:GetObject"])
    reads["Action"] = ["s3:GetObject", "s3:PutObject"]
    with pytest.raises(GuardrailViolation, match="allows s3:PutObject on arn:aws:s3:::photos/x/"):
        check_guardrails(doc, grants)


def test_a_condition_on_an_object_statement_is_refused() -> None:
    doc = document()
    objects = next(s for s in doc["Statement"] if "s3:GetObject" in s["Action"])
    objects["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
    with pytest.raises(GuardrailViolation, match="condition the broker never writes"):
        check_guardrails(doc, SCOPES)
