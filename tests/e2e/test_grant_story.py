"""The core story, checked as the instance sees it: its role's credentials, real S3 calls."""

import json

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.e2e.calls import (
    aws_associations,
    aws_policy,
    aws_profile_names,
    aws_role_exists,
    grant,
    role_name,
)


def test_grant_upload_then_revoke_as_the_instance_sees_it(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    data, other = buckets
    as_instance = emulator.try_as_instance
    assert as_instance(instance_id, "PutObject", data, "up/a.txt") == NO_CREDENTIALS

    response = grant(stub, instance_id, data, pb.ACCESS_UPLOAD, "up/", reason="nightly upload")

    granted = response.grant
    assert granted.state == pb.GRANT_STATE_ACTIVE
    assert granted.role_name == role_name(instance_id)
    assert granted.role_arn.endswith(f":role/accessbroker/{role_name(instance_id)}")
    assert granted.instance_profile_arn.endswith(
        f":instance-profile/accessbroker/{role_name(instance_id)}"
    )
    assert granted.association_id.startswith("iip-assoc-")
    assert granted.reason == "nightly upload"
    assert json.loads(response.policy_document) == aws_policy(emulator, instance_id)
    assert as_instance(instance_id, "PutObject", data, "up/a.txt") == ALLOWED
    assert as_instance(instance_id, "PutObject", data, "down/a.txt") == "AccessDenied"
    assert as_instance(instance_id, "PutObject", other, "up/a.txt") == "AccessDenied"
    assert as_instance(instance_id, "GetObject", data, "up/a.txt") == "AccessDenied"

    revoked = stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=granted.grant_id)).grant

    assert revoked.state == pb.GRANT_STATE_REVOKED
    assert as_instance(instance_id, "PutObject", data, "up/b.txt") == NO_CREDENTIALS
    assert not aws_role_exists(emulator, instance_id)
    assert aws_profile_names(emulator, instance_id) == []
    assert aws_associations(emulator, instance_id) == []


def test_second_grant_reuses_role_profile_and_association(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    data, other = buckets
    first = grant(stub, instance_id, data, pb.ACCESS_UPLOAD, "up/").grant
    second = grant(stub, instance_id, other, pb.ACCESS_READ, "in/").grant

    assert second.grant_id != first.grant_id
    assert (second.role_arn, second.instance_profile_arn, second.association_id) == (
        first.role_arn,
        first.instance_profile_arn,
        first.association_id,
    )
    assert aws_profile_names(emulator, instance_id) == [role_name(instance_id)]
    assert len(aws_associations(emulator, instance_id)) == 1
    emulator.client("s3").put_object(Bucket=other, Key="in/report.csv", Body=b"x")
    assert emulator.try_as_instance(instance_id, "PutObject", data, "up/x") == ALLOWED
    assert emulator.try_as_instance(instance_id, "GetObject", other, "in/report.csv") == ALLOWED

    stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=first.grant_id))

    assert emulator.try_as_instance(instance_id, "PutObject", data, "up/y") == "AccessDenied"
    assert emulator.try_as_instance(instance_id, "GetObject", other, "in/report.csv") == ALLOWED
    assert aws_role_exists(emulator, instance_id)


def test_read_is_scoped_to_its_prefix(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    data, _ = buckets
    s3 = emulator.client("s3")
    for key in ("team-a/q1.csv", "team-b/q1.csv"):
        s3.put_object(Bucket=data, Key=key, Body=b"x")

    response = grant(stub, instance_id, data, pb.ACCESS_READ, "team-a/")

    assert emulator.try_as_instance(instance_id, "GetObject", data, "team-a/q1.csv") == ALLOWED
    assert emulator.try_as_instance(instance_id, "GetObject", data, "team-b/q1.csv") == (
        "AccessDenied"
    )
    assert emulator.try_as_instance(instance_id, "PutObject", data, "team-a/new.csv") == (
        "AccessDenied"
    )
    # moto does not evaluate s3:prefix conditions, so the listing statement is checked as written.
    statements = json.loads(response.policy_document)["Statement"]
    listing = [s for s in statements if s["Action"] == ["s3:ListBucket"]]
    assert listing == [
        {
            "Sid": listing[0]["Sid"],
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{data}"],
            "Condition": {"StringLike": {"s3:prefix": ["team-a/*"]}},
        }
    ]


def test_describe_instance_access_shows_role_profile_policy_and_grants(
    stub: broker_pb2_grpc.AccessBrokerStub,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    granted = grant(stub, instance_id, buckets[0], pb.ACCESS_READ_WRITE, "shared/").grant

    access = stub.DescribeInstanceAccess(pb.DescribeInstanceAccessRequest(instance_id=instance_id))

    assert access.role_arn == granted.role_arn
    assert access.role_name == role_name(instance_id)
    assert access.instance_profile_name == role_name(instance_id)
    assert access.association_id == granted.association_id
    assert json.loads(access.policy_document) == aws_policy(emulator, instance_id)
    assert [g.grant_id for g in access.grants] == [granted.grant_id]
