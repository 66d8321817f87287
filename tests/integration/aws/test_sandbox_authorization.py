"""The emulator authorizes roles, profiles and associations on their real ARNs, with PassRole."""

import json
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Credentials, Emulator
from broker.sandbox.emulator import ACCOUNT_ID, REGION
from broker.sandbox.permissions import PASSED_TO_EC2, Call, Permission, required_permissions
from tests.integration.aws.names import unique

IAM_ARN = f"arn:aws:iam::{ACCOUNT_ID}"
INSTANCE_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:instance"


def call(service: str, action: str, **params: str) -> Call:
    return Call(service, action, ACCOUNT_ID, REGION, params)


def role_in_profile(emulator: Emulator, path: str) -> str:
    """A role and a profile holding it, of one name, on `path`."""
    iam, name = emulator.client("iam"), unique("authz")
    iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=EC2_TRUST_POLICY)
    iam.create_instance_profile(InstanceProfileName=name, Path=path)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return name


def identity_allowed(emulator: Emulator, *statements: dict[str, Any]) -> Credentials:
    iam, user = emulator.client("iam"), unique("authz-user")
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def allow(action: str, resource: str, **condition: dict[str, str]) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return statement | ({"Condition": condition} if condition else {})


def test_create_role_is_checked_on_the_requested_path_and_tagging() -> None:
    created = replace(call("iam", "CreateRole", RoleName="r", Path="/team/"), tagged=True)

    assert required_permissions(created) == (
        Permission("iam:CreateRole", f"{IAM_ARN}:role/team/r"),
        Permission("iam:TagRole", f"{IAM_ARN}:role/team/r"),
    )
    assert required_permissions(call("iam", "CreateInstanceProfile", InstanceProfileName="p")) == (
        Permission("iam:CreateInstanceProfile", f"{IAM_ARN}:instance-profile/p"),
    )


def test_calls_on_a_role_name_its_path_or_the_default_path_when_missing(
    emulator: Emulator,
) -> None:
    name = role_in_profile(emulator, "/team/")

    assert required_permissions(call("iam", "GetRole", RoleName=name)) == (
        Permission("iam:GetRole", f"{IAM_ARN}:role/team/{name}"),
    )
    assert required_permissions(call("iam", "DeleteRole", RoleName="missing")) == (
        Permission("iam:DeleteRole", f"{IAM_ARN}:role/missing"),
    )


def test_adding_a_role_to_a_profile_passes_it_to_ec2(emulator: Emulator) -> None:
    name = role_in_profile(emulator, "/team/")

    permissions = required_permissions(
        call("iam", "AddRoleToInstanceProfile", InstanceProfileName=name, RoleName=name)
    )

    assert permissions == (
        Permission("iam:AddRoleToInstanceProfile", f"{IAM_ARN}:instance-profile/team/{name}"),
        Permission("iam:PassRole", f"{IAM_ARN}:role/team/{name}", PASSED_TO_EC2),
    )


def test_associating_is_checked_on_the_instance_and_passes_the_profiles_role(
    emulator: Emulator,
) -> None:
    name, instance_id = role_in_profile(emulator, "/team/"), emulator.run_instance()
    profile_arn = f"{IAM_ARN}:instance-profile/team/{name}"
    expected = (
        Permission("ec2:AssociateIamInstanceProfile", f"{INSTANCE_ARN}/{instance_id}"),
        Permission("iam:PassRole", f"{IAM_ARN}:role/team/{name}", PASSED_TO_EC2),
    )

    for profile in ({"IamInstanceProfile.Name": name}, {"IamInstanceProfile.Arn": profile_arn}):
        associate = call("ec2", "AssociateIamInstanceProfile", InstanceId=instance_id, **profile)
        assert required_permissions(associate) == expected
    missing = call(
        "ec2",
        "AssociateIamInstanceProfile",
        InstanceId=instance_id,
        **{"IamInstanceProfile.Name": "x"},
    )
    assert required_permissions(missing) == expected[:1], "no role to pass: EC2 refuses anyway"


def test_disassociating_is_checked_on_the_associated_instance(emulator: Emulator) -> None:
    name, instance_id = role_in_profile(emulator, "/"), emulator.run_instance()
    association_id = emulator.client("ec2").associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": name}
    )["IamInstanceProfileAssociation"]["AssociationId"]

    for association, instance in ((association_id, instance_id), ("iip-assoc-unknown", "*")):
        permissions = call("ec2", "DisassociateIamInstanceProfile", AssociationId=association)
        assert required_permissions(permissions) == (
            Permission("ec2:DisassociateIamInstanceProfile", f"{INSTANCE_ARN}/{instance}"),
        )


def test_other_calls_are_left_to_moto() -> None:
    assert required_permissions(call("iam", "CreateUser", UserName="u")) is None
    assert required_permissions(call("iam", "ListRoles", PathPrefix="/team/")) is None
    assert required_permissions(call("ec2", "DescribeIamInstanceProfileAssociations")) is None
    assert required_permissions(call("s3", "PutObject")) is None


def test_a_policy_scoped_to_a_path_allows_that_path_only(emulator: Emulator) -> None:
    scoped = identity_allowed(
        emulator, allow("iam:CreateInstanceProfile", f"{IAM_ARN}:instance-profile/team/*")
    )
    iam = emulator.client("iam", scoped)

    iam.create_instance_profile(InstanceProfileName=unique("in"), Path="/team/")
    with pytest.raises(ClientError) as refused:
        iam.create_instance_profile(InstanceProfileName=unique("out"), Path="/other/")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def associating_as(emulator: Emulator, passed_to_service: str) -> None:
    """Associates a profile on /team/ as a caller allowed to pass /team/ roles to that service."""
    name, instance_id = role_in_profile(emulator, "/team/"), emulator.run_instance()
    caller = identity_allowed(
        emulator,
        allow("ec2:AssociateIamInstanceProfile", f"{INSTANCE_ARN}/*"),
        allow(
            "iam:PassRole",
            f"{IAM_ARN}:role/team/*",
            StringEquals={"iam:PassedToService": passed_to_service},
        ),
    )
    emulator.client("ec2", caller).associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": name}
    )


def test_associating_is_allowed_with_pass_role_to_ec2(emulator: Emulator) -> None:
    associating_as(emulator, "ec2.amazonaws.com")


def test_associating_is_refused_with_pass_role_to_another_service(emulator: Emulator) -> None:
    with pytest.raises(ClientError) as refused:
        associating_as(emulator, "lambda.amazonaws.com")

    assert "iam:PassRole on resource" in refused.value.response["Error"]["Message"]
