"""Small helpers for calling the broker, arranging what AWS holds behind its back, and reading
what AWS then holds."""

import json
import uuid
from typing import Any

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator


def grant(
    stub: broker_pb2_grpc.AccessBrokerStub,
    instance_id: str,
    bucket: str,
    access: "pb.Access.ValueType" = pb.ACCESS_UPLOAD,
    prefix: str = "",
    **fields: Any,
) -> pb.GrantAccessResponse:
    request = pb.GrantAccessRequest(
        instance_id=instance_id, bucket=bucket, access=access, prefix=prefix, **fields
    )
    response: pb.GrantAccessResponse = stub.GrantAccess(request, timeout=60)
    return response


def role_name(instance_id: str) -> str:
    return f"accessbroker-{instance_id}"


def aws_role_names(emulator: Emulator) -> list[str]:
    """Every role in the emulator, across all pages."""
    pages = emulator.client("iam").get_paginator("list_roles").paginate()
    return [r["RoleName"] for page in pages for r in page["Roles"]]


def aws_role_exists(emulator: Emulator, instance_id: str) -> bool:
    return role_name(instance_id) in aws_role_names(emulator)


def aws_profile_names(emulator: Emulator, instance_id: str) -> list[str]:
    pages = emulator.client("iam").get_paginator("list_instance_profiles").paginate()
    names = [p["InstanceProfileName"] for page in pages for p in page["InstanceProfiles"]]
    return [name for name in names if instance_id in name]


def aws_associations(emulator: Emulator, instance_id: str) -> list[dict[str, Any]]:
    found = emulator.client("ec2").describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    return [dict(a) for a in found if a["State"] in ("associating", "associated")]


def aws_policy(emulator: Emulator, instance_id: str) -> dict[str, Any]:
    response = emulator.client("iam").get_role_policy(
        RoleName=role_name(instance_id), PolicyName="accessbroker-grants"
    )
    document: Any = response["PolicyDocument"]  # boto3 decodes the URL-encoded JSON
    return dict(document) if isinstance(document, dict) else dict(json.loads(document))


def create_foreign_profile(emulator: Emulator) -> str:
    """A role and an instance profile holding it, of one new name, on the default path: as
    someone other than the broker makes them. Their name."""
    iam, name = emulator.client("iam"), f"foreign-{uuid.uuid4().hex[:12]}"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST_POLICY)
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return name


def associate_foreign_profile(emulator: Emulator, instance_id: str) -> str:
    """A new foreign profile (create_foreign_profile), associated with the instance by hand."""
    name = create_foreign_profile(emulator)
    emulator.client("ec2").associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": name}
    )
    return name
