"""The emulator answers as AWS would an instance: through its profile's role, authorization on."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Credentials, Emulator
from tests.integration.aws.names import unique


def give_instance_a_role(emulator: Emulator, instance_id: str, policy: dict[str, object]) -> str:
    """Role and profile of one name, the role holding `policy`, associated with the instance."""
    iam, name = emulator.client("iam"), unique("sandbox-role")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST_POLICY)
    iam.put_role_policy(RoleName=name, PolicyName="grants", PolicyDocument=json.dumps(policy))
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    emulator.client("ec2").associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": name}
    )
    return name


def upload_policy(bucket: str, prefix: str) -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}*",
            }
        ],
    }


def test_unknown_access_key_is_refused(emulator: Emulator) -> None:
    stranger = Credentials("AKIAEXAMPLEEXAMPLE00", "not-a-real-secret")

    with pytest.raises(ClientError) as refused:
        emulator.client("iam", stranger).list_roles()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_instance_without_a_profile_has_no_credentials(emulator: Emulator) -> None:
    instance_id = emulator.run_instance()
    bucket = unique("sandbox-bucket")
    emulator.create_bucket(bucket)

    assert emulator.instance_credentials(instance_id) is None
    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "x") == "no credentials"


def test_instance_whose_profile_holds_no_role_has_no_credentials(emulator: Emulator) -> None:
    instance_id, name = emulator.run_instance(), unique("sandbox-empty")
    emulator.client("iam").create_instance_profile(InstanceProfileName=name)
    emulator.client("ec2").associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": name}
    )

    assert emulator.instance_credentials(instance_id) is None


def test_instance_credentials_belong_to_the_profiles_role(emulator: Emulator) -> None:
    instance_id = emulator.run_instance()
    role_name = give_instance_a_role(emulator, instance_id, upload_policy("any-bucket", "x/"))

    credentials = emulator.instance_credentials(instance_id)

    assert credentials is not None
    identity = emulator.client("sts", credentials).get_caller_identity()
    assert f":assumed-role/{role_name}/" in identity["Arn"]


@pytest.fixture(scope="module")
def uploader(emulator: Emulator) -> tuple[str, str]:
    """An instance allowed to upload under data/up/ of a fresh bucket, and that bucket."""
    instance_id, bucket = emulator.run_instance(), unique("sandbox-bucket")
    emulator.create_bucket(bucket)
    give_instance_a_role(emulator, instance_id, upload_policy(bucket, "data/up/"))
    return instance_id, bucket


def test_upload_inside_the_prefix_is_allowed(emulator: Emulator, uploader: tuple[str, str]) -> None:
    instance_id, bucket = uploader

    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "data/up/a.txt") == "allowed"


def test_upload_outside_the_prefix_is_denied(emulator: Emulator, uploader: tuple[str, str]) -> None:
    instance_id, bucket = uploader

    outcome = emulator.try_as_instance(instance_id, "PutObject", bucket, "data/other/a.txt")

    assert outcome == "AccessDenied"


def test_upload_to_another_bucket_is_denied(emulator: Emulator, uploader: tuple[str, str]) -> None:
    instance_id, _ = uploader
    other_bucket = unique("sandbox-other")
    emulator.create_bucket(other_bucket)

    outcome = emulator.try_as_instance(instance_id, "PutObject", other_bucket, "data/up/a.txt")

    assert outcome == "AccessDenied"


def test_reading_back_an_upload_is_denied(emulator: Emulator, uploader: tuple[str, str]) -> None:
    instance_id, bucket = uploader
    emulator.try_as_instance(instance_id, "PutObject", bucket, "data/up/b.txt")

    assert emulator.try_as_instance(instance_id, "GetObject", bucket, "data/up/b.txt") == (
        "AccessDenied"
    )


def test_a_second_emulator_starts_while_authorization_is_on(emulator: Emulator) -> None:
    with Emulator() as second:
        assert second.endpoint_url != emulator.endpoint_url
        # Unsigned-by-a-known-key requests are refused there too: authorization stays on.
        anonymous = boto3.client(
            "s3",
            endpoint_url=second.endpoint_url,
            region_name=second.region,
            aws_access_key_id="AKIAEXAMPLEEXAMPLE00",
            aws_secret_access_key="not-a-real-secret",
        )
        with pytest.raises(ClientError):
            anonymous.list_buckets()
        second.create_bucket(unique("second-emulator"))
