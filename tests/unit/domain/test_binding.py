"""Credentials that only work where they belong: the binding's conditions on every statement,
and the guardrails that accept exactly them."""

import pytest

from broker.domain.access import Access
from broker.domain.errors import GuardrailViolation
from broker.domain.grants import GrantScope
from broker.domain.guardrails import check_guardrails
from broker.domain.policy import Binding, build_policy

SCOPES = [
    GrantScope("photos", "in/", Access.UPLOAD),
    GrantScope("photos", "in/", Access.READ),
    GrantScope("logs", "", Access.LIST),
]
BOTH = Binding(require_imdsv2=True, same_vpc=True)
IMDSV2 = {"ec2:RoleDelivery": "2.0"}
SAME_VPC = {"aws:SourceVpc": "${aws:ec2InstanceSourceVPC}"}


def test_every_statement_carries_the_bindings_conditions_beside_its_own() -> None:
    document = build_policy(SCOPES, BOTH)

    assert document is not None
    for statement in document["Statement"]:
        condition = statement["Condition"]
        assert condition["NumericGreaterThanEquals"] == IMDSV2
        assert condition["StringEquals"] == SAME_VPC
    listing = [s for s in document["Statement"] if s["Action"] == ["s3:ListBucket"]]
    assert listing[0]["Condition"]["StringLike"] == {"s3:prefix": ["in/*"]}


@pytest.mark.parametrize(
    ("binding", "operators"),
    [
        (Binding(), set()),
        (Binding(require_imdsv2=True), {"NumericGreaterThanEquals"}),
        (Binding(same_vpc=True), {"StringEquals"}),
    ],
)
def test_each_binding_adds_its_own_condition_only(binding: Binding, operators: set[str]) -> None:
    document = build_policy([GrantScope("photos", "in/", Access.UPLOAD)], binding)

    assert document is not None
    assert {op for s in document["Statement"] for op in s.get("Condition", {})} == operators


def test_the_guardrails_accept_exactly_the_bindings_conditions() -> None:
    bound = build_policy(SCOPES, BOTH)
    check_guardrails(bound, SCOPES, BOTH)

    with pytest.raises(GuardrailViolation, match="a condition the broker never writes"):
        check_guardrails(bound, SCOPES)  # conditions the broker was not told to write
    assert bound is not None
    loosened = {**bound["Statement"][0], "Condition": {"NumericGreaterThanEquals": IMDSV2}}
    with pytest.raises(GuardrailViolation, match="lacks the condition StringEquals"):
        check_guardrails({**bound, "Statement": [loosened]}, SCOPES, BOTH)
    widened = {
        **bound["Statement"][0],
        "Condition": {**bound["Statement"][0]["Condition"], "IpAddress": {"aws:SourceIp": "0/0"}},
    }
    with pytest.raises(GuardrailViolation, match="a condition the broker never writes"):
        check_guardrails({**bound, "Statement": [widened]}, SCOPES, BOTH)
