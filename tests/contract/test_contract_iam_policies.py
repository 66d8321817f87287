"""The Iam port's policies on a role: its inline policies (the broker's and others') and the
managed policies attached to it, which drift repair reads and removes."""

import json

import pytest

from broker.domain.errors import AwsRejected
from tests.contract.aws_worlds import POLICY, AwsWorld, unique


def test_inline_policy_lifecycle(aws: AwsWorld, role: str) -> None:
    assert aws.iam.get_role_policy(role, "accessbroker-grants") is None

    aws.iam.put_role_policy(role, "accessbroker-grants", json.dumps(POLICY))
    assert aws.iam.get_role_policy(role, "accessbroker-grants") == POLICY

    aws.iam.delete_role_policy(role, "accessbroker-grants")
    assert aws.iam.get_role_policy(role, "accessbroker-grants") is None
    aws.iam.delete_role_policy(role, "accessbroker-grants")


def test_inline_policy_of_a_missing_role_is_none_and_deleting_it_is_done(aws: AwsWorld) -> None:
    name = unique("missing")

    assert aws.iam.get_role_policy(name, "accessbroker-grants") is None
    aws.iam.delete_role_policy(name, "accessbroker-grants")


def test_putting_a_policy_on_a_missing_role_is_rejected(aws: AwsWorld) -> None:
    with pytest.raises(AwsRejected, match="PutRolePolicy failed: NoSuchEntity"):
        aws.iam.put_role_policy(unique("missing"), "accessbroker-grants", json.dumps(POLICY))


def test_inline_policies_are_listed_by_name_ours_and_others(aws: AwsWorld, role: str) -> None:
    assert aws.iam.list_inline_policies(role) == []

    aws.iam.put_role_policy(role, "accessbroker-grants", json.dumps(POLICY))
    aws.put_policy_by_hand(role, "added-by-hand", POLICY)

    assert sorted(aws.iam.list_inline_policies(role)) == ["accessbroker-grants", "added-by-hand"]


def test_attached_managed_policies_are_listed_by_arn(aws: AwsWorld, role: str) -> None:
    assert aws.iam.list_attached_policies(role) == []
    managed_policy = aws.create_managed_policy()

    aws.attach_by_hand(role, managed_policy)

    assert aws.iam.list_attached_policies(role) == [managed_policy]
    assert aws.iam.list_inline_policies(role) == [], "a managed policy is not an inline one"


def test_detached_policy_is_gone_and_detaching_again_is_done(aws: AwsWorld, role: str) -> None:
    managed_policy = aws.create_managed_policy()
    aws.attach_by_hand(role, managed_policy)

    aws.iam.detach_policy(role, managed_policy)

    assert aws.iam.list_attached_policies(role) == []
    assert aws.attached_policies(role) == []
    aws.iam.detach_policy(role, managed_policy)


def test_detaching_from_a_missing_role_is_done(aws: AwsWorld) -> None:
    aws.iam.detach_policy(unique("missing"), aws.create_managed_policy())


def test_listing_the_policies_of_a_missing_role_finds_none(aws: AwsWorld) -> None:
    missing = unique("missing")

    assert aws.iam.list_inline_policies(missing) == []
    assert aws.iam.list_attached_policies(missing) == []
