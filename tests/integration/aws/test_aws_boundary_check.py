"""check_boundary against the emulator: the boundary the broker is given must exist and allow no
more than the S3 actions of the access levels, or the broker does not start."""

import json
from pathlib import Path
from typing import Any

import pytest
from mypy_boto3_iam.client import IAMClient

from broker.adapters.aws import BotoIam
from broker.bootstrap import check_boundary
from broker.sandbox import Credentials, Emulator
from broker.settings import ConfigurationError
from tests.integration.aws.names import unique

SHIPPED = Path(__file__).parents[3] / "deploy" / "iam" / "boundary-policy.json"


def created(iam_client: IAMClient, document: dict[str, Any]) -> str:
    name = unique("accessbroker-boundary")
    policy = iam_client.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))
    return policy["Policy"]["Arn"]


def shipped(buckets: str = "team-*") -> dict[str, Any]:
    """deploy/iam/boundary-policy.json with its placeholder filled in, as a team would."""
    document: dict[str, Any] = json.loads(SHIPPED.read_text().replace("GRANTABLE_BUCKETS", buckets))
    return document


def test_the_shipped_boundary_is_accepted(iam: BotoIam, iam_client: IAMClient) -> None:
    check_boundary(iam, created(iam_client, shipped()))


def test_the_shipped_boundary_with_its_placeholder_left_in_is_refused(
    iam: BotoIam, iam_client: IAMClient
) -> None:
    arn = created(iam_client, json.loads(SHIPPED.read_text()))

    with pytest.raises(ConfigurationError, match="still names GRANTABLE_BUCKETS"):
        check_boundary(iam, arn)


def test_a_wider_boundary_is_refused_naming_what_it_allows_beyond(
    iam: BotoIam, iam_client: IAMClient
) -> None:
    wider = shipped()
    wider["Statement"].append({"Effect": "Allow", "Action": "iam:*", "Resource": "*"})
    arn = created(iam_client, wider)

    with pytest.raises(
        ConfigurationError, match=r"cannot bound the broker's roles: statement 2 allows iam:\*"
    ):
        check_boundary(iam, arn)


def test_a_boundary_that_does_not_exist_is_refused(iam: BotoIam) -> None:
    missing = "arn:aws:iam::123456789012:policy/accessbroker-boundary-never-made"

    with pytest.raises(ConfigurationError, match="no such policy"):
        check_boundary(iam, missing)


def test_a_boundary_the_broker_may_not_read_is_refused(emulator: Emulator) -> None:
    """A broker policy without ReadThePermissionsBoundary: a mistake to fix, not to start with."""
    arn = emulator.permissions_boundary()
    iam = emulator.client("iam")
    user = unique("cannot-read")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    refused = BotoIam(
        emulator.client("iam", Credentials(key["AccessKeyId"], key["SecretAccessKey"])),
        propagation_timeout=1.0,
    )

    with pytest.raises(ConfigurationError, match=f"{arn} cannot be read: .*AccessDenied"):
        check_boundary(refused, arn)
