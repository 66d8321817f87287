"""An in-process AWS emulator (moto) with IAM authorization enforced, for the sandbox and tests.

moto keeps its state in process-wide backends: several emulators in one process share it, so
nothing here resets state; callers use fresh instances and unique bucket names instead.
"""

from __future__ import annotations

import json
import logging
import urllib.request
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3

from broker.domain.boundary import BOUNDARY_NAME, boundary_document
from broker.sandbox.instance_view import NO_CREDENTIALS, S3Action, instance_role_arn, s3_outcome

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_iam.client import IAMClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sts.client import STSClient

REGION = "us-east-1"
# moto's default account; every emulator in the process shares it.
ACCOUNT_ID = "123456789012"
# An AMI from moto's built-in catalogue for us-east-1.
SANDBOX_AMI_ID = "ami-12c6146b"
_ALLOW_EVERYTHING = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


class Emulator:
    """moto's server on 127.0.0.1 (a free port) plus an admin user; use as a context manager."""

    region = REGION

    def __init__(self) -> None:
        self._server: ThreadedMotoServer | None = None
        self._admin: Credentials | None = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        # moto is the optional `sandbox` extra and slow to import: load it only when used.
        from moto.server import ThreadedMotoServer  # noqa: PLC0415

        from broker.sandbox import authorization  # noqa: PLC0415 (it imports moto)

        # Roles, profiles and associations are authorized on their real ARNs, with iam:PassRole.
        authorization.install()
        # One access-log line per request would drown the broker's own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self._admin = _create_admin()
        self._enforce_authorization()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def admin_credentials(self) -> Credentials:
        if self._admin is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._admin

    @overload
    def client(
        self, service: Literal["iam"], credentials: Credentials | None = None
    ) -> IAMClient: ...
    @overload
    def client(
        self, service: Literal["ec2"], credentials: Credentials | None = None
    ) -> EC2Client: ...
    @overload
    def client(
        self, service: Literal["s3"], credentials: Credentials | None = None
    ) -> S3Client: ...
    @overload
    def client(
        self, service: Literal["sts"], credentials: Credentials | None = None
    ) -> STSClient: ...
    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        """A boto3 client for the emulator, signed with the admin key unless told otherwise."""
        key = credentials or self.admin_credentials
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
            aws_session_token=key.session_token,
        )

    def permissions_boundary(self, account_id: str = ACCOUNT_ID) -> str:
        """The ARN of the account's accessbroker-boundary, created on first use (in moto's
        backend, so it works whoever is signed in). It bounds roles to the access levels' S3
        actions on every bucket: tests and the sandbox make buckets of every name."""
        iam = _moto_backend("iam", account_id)
        arn = f"arn:aws:iam::{account_id}:policy/{BOUNDARY_NAME}"
        if arn not in iam.managed_policies:
            document = json.dumps(boundary_document(["*"]))
            iam.create_policy(
                description="",
                path="/",
                policy_document=document,
                policy_name=BOUNDARY_NAME,
                tags=[],
            )
        return arn

    def create_bucket(self, name: str) -> None:
        self.client("s3").create_bucket(Bucket=name)

    def run_instance(self) -> str:
        """The id of a new running instance without an instance profile."""
        reservation = self.client("ec2").run_instances(
            ImageId=SANDBOX_AMI_ID, InstanceType="t3.micro", MinCount=1, MaxCount=1
        )
        return reservation["Instances"][0]["InstanceId"]

    def instance_credentials(self, instance_id: str) -> Credentials | None:
        """Fresh credentials of the instance's role, as EC2 would hand them out; None without."""
        role_arn = instance_role_arn(self.client("ec2"), self.client("iam"), instance_id)
        return None if role_arn is None else mint_role_credentials(role_arn)

    def try_as_instance(self, instance_id: str, action: S3Action, bucket: str, key: str) -> str:
        """'allowed', the S3 error code (e.g. 'AccessDenied'), or 'no credentials'."""
        credentials = self.instance_credentials(instance_id)
        if credentials is None:
            return NO_CREDENTIALS
        return s3_outcome(self.client("s3", credentials), action, bucket, key)

    def _enforce_authorization(self) -> None:
        # From now on moto checks every request against the caller's IAM policies. The setting
        # is process-wide, so it also covers emulators started earlier or later in this process.
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            # urllib would default to a form content type, whose body the server does not see.
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def _create_admin() -> Credentials:
    """An allow-all IAM user and its key, created in moto's backend directly.

    Going through the backend rather than HTTP works even when another emulator in this process
    has already turned authorization on.
    """
    iam = _moto_backend("iam")
    user_name = f"sandbox-admin-{uuid.uuid4().hex[:12]}"
    iam.create_user(region_name=REGION, user_name=user_name)
    iam.put_user_policy(user_name, "allow-all", _ALLOW_EVERYTHING)
    key = iam.create_access_key(user_name)
    return Credentials(key.access_key_id, key.secret_access_key)


def mint_role_credentials(role_arn: str) -> Credentials:
    """Credentials of the role, as EC2 hands them to an instance whose profile holds it (in
    whichever account the role is)."""
    # moto's AssumeRole refuses a role whose trust policy names a service principal (ec2), so
    # the credentials are minted directly in moto's STS backend, as EC2 itself would.
    sts = _moto_backend("sts", account_id=role_arn.split(":")[4])
    assumed = sts.assume_role(
        region_name=REGION,
        role_session_name=f"instance-{uuid.uuid4().hex[:12]}",
        role_arn=role_arn,
        policy=None,
        duration=900,
        external_id=None,
    )
    return Credentials(assumed.access_key_id, assumed.secret_access_key, assumed.session_token)


def _moto_backend(service: Literal["iam", "sts"], account_id: str = ACCOUNT_ID) -> Any:
    """The service's in-process state for an account (the "aws" partition): the default one
    unless told."""
    from moto.backends import get_backend  # noqa: PLC0415

    return get_backend(service)[account_id]["aws"]
