"""What an EC2 instance sees: which role its instance profile lends it, and what S3 then allows.

EC2 hands an instance the credentials of the role in its associated profile; the emulator mimics
that, so checks here exercise the IAM state the broker actually wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_iam.client import IAMClient
    from mypy_boto3_s3.client import S3Client

S3Action = Literal["PutObject", "GetObject"]
ALLOWED = "allowed"
NO_CREDENTIALS = "no credentials"


def instance_role_arn(ec2: EC2Client, iam: IAMClient, instance_id: str) -> str | None:
    """The ARN of the role the instance's associated profile holds; None without one."""
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[
            {"Name": "instance-id", "Values": [instance_id]},
            {"Name": "state", "Values": ["associating", "associated"]},
        ]
    )["IamInstanceProfileAssociations"]
    if not associations:
        return None
    profile_name = associations[0]["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1]
    roles = iam.get_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"]["Roles"]
    return roles[0]["Arn"] if roles else None


def s3_outcome(s3: S3Client, action: S3Action, bucket: str, key: str) -> str:
    """ALLOWED, or the S3 error code (e.g. AccessDenied) the call failed with."""
    try:
        if action == "PutObject":
            s3.put_object(Bucket=bucket, Key=key, Body=b"written by the instance")
        else:
            s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return ALLOWED
