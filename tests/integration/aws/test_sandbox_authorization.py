"""The emulator authorizes roles, profiles and associations on their real ARNs, with PassRole,
with the context keys their conditions read, and within the caller's permissions boundary."""

import json
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from broker.domain.naming import ADOPTABLE_TAG
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Credentials, Emulator
from broker.sandbox.emulator import ACCOUNT_ID, REGION, mint_role_credentials
from broker.sandbox.instance_view import ALLOWED
from broker.sandbox.permissions import PASSED_TO_EC2, Call, Permission, required_permissions
from tests.aws_outcomes import outcome, refusal
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


def deny(action: str, resource: str, **condition: dict[str, str]) -> dict[str, Any]:
    return allow(action, resource, **condition) | {"Effect": "Deny"}


def managed_policy(emulator: Emulator, *statements: dict[str, Any]) -> str:
    """The ARN of a new managed policy holding the statements."""
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    created = emulator.client("iam").create_policy(
        PolicyName=unique("boundary"), PolicyDocument=json.dumps(document)
    )
    return created["Policy"]["Arn"]


def in_any_account(policy_arn: str) -> str:
    """The pattern the broker's policy names its boundary with: any account, this name."""
    return f"arn:aws:iam::*:policy/{policy_arn.rsplit('/', 1)[-1]}"


def role_with_boundary(emulator: Emulator, boundary: str, **tags: str) -> str:
    name = unique("bounded")
    emulator.client("iam").create_role(
        RoleName=name,
        AssumeRolePolicyDocument=EC2_TRUST_POLICY,
        PermissionsBoundary=boundary,
        Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
    )
    return name


def role_without_boundary(emulator: Emulator, **tags: str) -> str:
    name = unique("unbounded")
    emulator.client("iam").create_role(
        RoleName=name,
        AssumeRolePolicyDocument=EC2_TRUST_POLICY,
        Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
    )
    return name


READ_ANYTHING = json.dumps(
    {"Version": "2012-10-17", "Statement": [allow("s3:GetObject", "arn:aws:s3:::*")]}
)
BOUNDARY_KEY = "iam:PermissionsBoundary"


def test_calls_on_a_role_carry_its_tags_and_boundary_as_context(emulator: Emulator) -> None:
    boundary, other = f"{IAM_ARN}:policy/{unique('b')}", f"{IAM_ARN}:policy/{unique('other')}"
    name = role_with_boundary(emulator, boundary, team="web")
    role = f"{IAM_ARN}:role/{name}"
    tags = {"iam:ResourceTag/team": "web", "aws:ResourceTag/team": "web"}

    for action in (
        "PutRolePolicy",
        "DeleteRolePolicy",
        "AttachRolePolicy",
        "DetachRolePolicy",
        "DeleteRolePermissionsBoundary",
    ):
        assert required_permissions(call("iam", action, RoleName=name)) == (
            Permission(f"iam:{action}", role, tags | {BOUNDARY_KEY: boundary}),
        )
    assert required_permissions(
        call("iam", "PutRolePermissionsBoundary", RoleName=name, PermissionsBoundary=other)
    ) == (Permission("iam:PutRolePermissionsBoundary", role, tags | {BOUNDARY_KEY: other}),)
    assert required_permissions(call("iam", "GetRole", RoleName=name)) == (
        Permission("iam:GetRole", role, tags),
    )


def test_create_role_carries_the_requested_boundary_only() -> None:
    boundary = f"{IAM_ARN}:policy/b"

    assert required_permissions(
        call("iam", "CreateRole", RoleName="r", PermissionsBoundary=boundary)
    ) == (Permission("iam:CreateRole", f"{IAM_ARN}:role/r", {BOUNDARY_KEY: boundary}),)


def allowed_with_boundary(emulator: Emulator, action: str, boundary: str) -> Credentials:
    """A caller allowed `action` on any role only with `boundary` (as broker-policy.json)."""
    with_it = {BOUNDARY_KEY: in_any_account(boundary)}
    return identity_allowed(emulator, allow(action, f"{IAM_ARN}:role/*", StringLike=with_it))


def test_create_role_may_be_allowed_with_the_boundary_only(emulator: Emulator) -> None:
    boundary = managed_policy(emulator, allow("s3:GetObject", "*"))
    other = managed_policy(emulator, allow("s3:GetObject", "*"))
    iam = emulator.client("iam", allowed_with_boundary(emulator, "iam:CreateRole", boundary))

    created = iam.create_role(
        RoleName=unique("with"),
        AssumeRolePolicyDocument=EC2_TRUST_POLICY,
        PermissionsBoundary=boundary,
    )
    without = refusal(
        lambda: iam.create_role(
            RoleName=unique("without"), AssumeRolePolicyDocument=EC2_TRUST_POLICY
        )
    )
    with_another = refusal(
        lambda: iam.create_role(
            RoleName=unique("other"),
            AssumeRolePolicyDocument=EC2_TRUST_POLICY,
            PermissionsBoundary=other,
        )
    )

    assert created["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    for message in (without, with_another):
        assert "because no identity-based policy allows the iam:CreateRole action" in message


def test_put_role_policy_may_be_allowed_on_roles_with_the_boundary_only(
    emulator: Emulator,
) -> None:
    boundary = managed_policy(emulator, allow("s3:GetObject", "*"))
    bounded, unbounded = role_with_boundary(emulator, boundary), role_without_boundary(emulator)
    iam = emulator.client("iam", allowed_with_boundary(emulator, "iam:PutRolePolicy", boundary))

    iam.put_role_policy(RoleName=bounded, PolicyName="read", PolicyDocument=READ_ANYTHING)
    message = refusal(
        lambda: iam.put_role_policy(
            RoleName=unbounded, PolicyName="read", PolicyDocument=READ_ANYTHING
        )
    )

    assert f"iam:PutRolePolicy on resource: {IAM_ARN}:role/{unbounded}" in message
    assert emulator.client("iam").list_role_policies(RoleName=unbounded)["PolicyNames"] == []


def test_explicit_denies_keep_the_boundary_in_place(emulator: Emulator) -> None:
    """As the broker's own policy: a Deny unless the boundary is the one, and a plain Deny."""
    boundary = managed_policy(emulator, allow("s3:GetObject", "*"))
    other = managed_policy(emulator, allow("s3:*", "*"))
    name = role_with_boundary(emulator, boundary)
    caller = identity_allowed(
        emulator,
        allow("iam:*", f"{IAM_ARN}:role/*"),
        deny(
            "iam:PutRolePermissionsBoundary",
            "*",
            StringNotLike={BOUNDARY_KEY: in_any_account(boundary)},
        ),
        deny("iam:DeleteRolePermissionsBoundary", "*"),
    )
    iam = emulator.client("iam", caller)

    iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)
    replaced = refusal(
        lambda: iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=other)
    )
    removed = refusal(lambda: iam.delete_role_permissions_boundary(RoleName=name))

    for message in (replaced, removed):
        assert "with an explicit deny in an identity-based policy" in message
    still = emulator.client("iam").get_role(RoleName=name)["Role"]["PermissionsBoundary"]
    assert still["PermissionsBoundaryArn"] == boundary


def test_a_resource_tag_condition_sees_the_roles_tags(emulator: Emulator) -> None:
    """The adoption policy's condition: only roles tagged adoptable."""
    tag_key, tag_value = ADOPTABLE_TAG
    tagged = role_without_boundary(emulator, **{tag_key: tag_value})
    untagged = role_without_boundary(emulator)
    caller = identity_allowed(
        emulator,
        allow(
            "iam:PutRolePolicy",
            f"{IAM_ARN}:role/*",
            StringEquals={f"iam:ResourceTag/{tag_key}": tag_value},
        ),
    )
    iam = emulator.client("iam", caller)

    iam.put_role_policy(RoleName=tagged, PolicyName="read", PolicyDocument=READ_ANYTHING)
    message = refusal(
        lambda: iam.put_role_policy(
            RoleName=untagged, PolicyName="read", PolicyDocument=READ_ANYTHING
        )
    )

    assert "because no identity-based policy allows the iam:PutRolePolicy action" in message


def credentials_allowed_everything(emulator: Emulator, role_name: str) -> Credentials:
    """The role's credentials, after an inline policy allowing every action on everything."""
    everything = {"Version": "2012-10-17", "Statement": [allow("*", "*")]}
    iam = emulator.client("iam")
    iam.put_role_policy(
        RoleName=role_name, PolicyName="everything", PolicyDocument=json.dumps(everything)
    )
    return mint_role_credentials(iam.get_role(RoleName=role_name)["Role"]["Arn"])


@pytest.fixture(scope="module")
def buckets(emulator: Emulator) -> tuple[str, str]:
    """Two buckets, each holding the object "k"."""
    names = unique("readable"), unique("other")
    for bucket in names:
        emulator.create_bucket(bucket)
        emulator.client("s3").put_object(Bucket=bucket, Key="k", Body=b"kept")
    return names


def what_the_role_may_do(
    emulator: Emulator, credentials: Credentials, readable: str, other: str
) -> dict[str, str]:
    s3, iam = emulator.client("s3", credentials), emulator.client("iam", credentials)
    return {
        "get from the readable bucket": outcome(lambda: s3.get_object(Bucket=readable, Key="k")),
        "get from the other bucket": outcome(lambda: s3.get_object(Bucket=other, Key="k")),
        "put in the readable bucket": outcome(
            lambda: s3.put_object(Bucket=readable, Key=unique("new"), Body=b"new")
        ),
        "list roles": outcome(iam.list_roles),
        "create a role": outcome(
            lambda: iam.create_role(
                RoleName=unique("made"), AssumeRolePolicyDocument=EC2_TRUST_POLICY
            )
        ),
        "say who it is": outcome(emulator.client("sts", credentials).get_caller_identity),
    }


def test_a_boundary_limits_every_call_of_the_role_it_bounds(
    emulator: Emulator, buckets: tuple[str, str]
) -> None:
    readable, other = buckets
    boundary = managed_policy(emulator, allow("s3:GetObject", f"arn:aws:s3:::{readable}/*"))
    credentials = credentials_allowed_everything(emulator, role_with_boundary(emulator, boundary))

    assert what_the_role_may_do(emulator, credentials, readable, other) == {
        "get from the readable bucket": ALLOWED,
        "get from the other bucket": "AccessDenied",
        "put in the readable bucket": "AccessDenied",
        "list roles": "AccessDenied",
        "create a role": "AccessDenied",
        "say who it is": ALLOWED,
    }
    assert "because no permissions boundary allows the iam:CreateRole action" in refusal(
        lambda: emulator.client("iam", credentials).create_role(
            RoleName=unique("made"), AssumeRolePolicyDocument=EC2_TRUST_POLICY
        )
    )


def test_without_a_boundary_the_same_policy_allows_it_all(
    emulator: Emulator, buckets: tuple[str, str]
) -> None:
    readable, other = buckets
    credentials = credentials_allowed_everything(emulator, role_without_boundary(emulator))

    outcomes = what_the_role_may_do(emulator, credentials, readable, other)

    assert outcomes == dict.fromkeys(outcomes, ALLOWED)
    assert len(outcomes) == 6


def test_a_boundary_naming_no_policy_allows_nothing(
    emulator: Emulator, buckets: tuple[str, str]
) -> None:
    readable, _ = buckets
    missing = f"{IAM_ARN}:policy/{unique('missing')}"
    credentials = credentials_allowed_everything(emulator, role_with_boundary(emulator, missing))

    s3 = emulator.client("s3", credentials)

    assert outcome(lambda: s3.get_object(Bucket=readable, Key="k")) == "AccessDenied"
