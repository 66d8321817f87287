"""BROKER_FOREIGN_PROFILE=attach against the real server: the instance keeps its own profile and
role; the broker's inline policy comes and goes on that role, nothing else of it changes."""

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from mypy_boto3_iam.type_defs import TagTypeDef

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.naming import ADOPTABLE_TAG
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_associations, aws_role_exists, grant

BROKER_POLICY = "accessbroker-grants"


@pytest.fixture(scope="module")
def adopting_broker(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerProcess]:
    database = tmp_path_factory.mktemp("adopting") / "broker.db"
    process = BrokerProcess(emulator, f"sqlite:///{database}", BROKER_FOREIGN_PROFILE="attach")
    process.start()
    yield process
    process.stop()


def owners_profile(
    emulator: Emulator, instance_id: str, readable_bucket: str, *, adoptable: bool = True
) -> str:
    """The instance owner's own profile and role (reading one bucket), associated by hand; the
    role tagged as one the broker may adopt unless told."""
    iam = emulator.client("iam")
    name = f"team-{instance_id}"
    tag: TagTypeDef = {"Key": ADOPTABLE_TAG[0], "Value": ADOPTABLE_TAG[1]}
    iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=EC2_TRUST_POLICY, Tags=[tag] if adoptable else []
    )
    own_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{readable_bucket}/*",
            }
        ],
    }
    iam.put_role_policy(RoleName=name, PolicyName="team-own", PolicyDocument=json.dumps(own_policy))
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    emulator.client("ec2").associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": name}
    )
    return name


def role_state(emulator: Emulator, role: str) -> dict[str, Any]:
    iam = emulator.client("iam")
    return {
        "inline": sorted(iam.list_role_policies(RoleName=role)["PolicyNames"]),
        "attached": iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"],
        "trust": iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"],
    }


def test_adoption_adds_and_removes_only_the_brokers_policy(
    adopting_broker: BrokerProcess,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    data, other = buckets
    emulator.client("s3").put_object(Bucket=other, Key="team/report.csv", Body=b"x")
    role = owners_profile(emulator, instance_id, other)
    association = aws_associations(emulator, instance_id)
    before = role_state(emulator, role)
    stub = adopting_broker.stub

    granted = grant(stub, instance_id, data, pb.ACCESS_UPLOAD, "up/").grant

    assert granted.state == pb.GRANT_STATE_ACTIVE
    assert granted.role_name == role and granted.instance_profile_name == role
    assert emulator.try_as_instance(instance_id, "PutObject", data, "up/a") == ALLOWED
    assert emulator.try_as_instance(instance_id, "GetObject", other, "team/report.csv") == ALLOWED
    during = role_state(emulator, role)
    assert during["inline"] == sorted(["team-own", BROKER_POLICY])
    assert (during["attached"], during["trust"]) == (before["attached"], before["trust"])
    assert aws_associations(emulator, instance_id) == association
    assert not aws_role_exists(emulator, instance_id)  # no role of the broker's own

    stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=granted.grant_id), timeout=60)

    assert emulator.try_as_instance(instance_id, "PutObject", data, "up/b") == "AccessDenied"
    assert emulator.try_as_instance(instance_id, "GetObject", other, "team/report.csv") == ALLOWED
    assert role_state(emulator, role) == before
    assert aws_associations(emulator, instance_id) == association
    changes = _aws_changes(stub, instance_id)
    assert changes == [
        f"put inline policy {BROKER_POLICY} on role {role}",
        f"delete inline policy {BROKER_POLICY} from role {role}",
    ]


def _aws_changes(stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str) -> list[str]:
    events = stub.ListAuditEvents(
        pb.ListAuditEventsRequest(instance_id=instance_id), timeout=10
    ).events
    return [json.loads(e.detail)["change"] for e in events if e.action.startswith("aws.")]


def test_a_role_not_tagged_adoptable_is_refused_naming_the_tag(
    adopting_broker: BrokerProcess,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    role = owners_profile(emulator, instance_id, buckets[1], adoptable=False)
    before = role_state(emulator, role)

    with pytest.raises(grpc.RpcError) as refused:
        grant(adopting_broker.stub, instance_id, buckets[0], pb.ACCESS_UPLOAD, "up/")

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not tagged accessbroker:adoptable=true" in (refused.value.details() or "")
    assert role_state(emulator, role) == before
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "up/a") == "AccessDenied"
