"""Building the boto3 clients; only the composition root calls this, never at import time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_iam.client import IAMClient


class StaticCredentials(Protocol):
    """An explicit access key, e.g. the sandbox emulator's admin key (any object of this shape)."""

    @property
    def access_key_id(self) -> str: ...
    @property
    def secret_access_key(self) -> str: ...
    @property
    def session_token(self) -> str | None: ...


@dataclass(frozen=True)
class AwsClients:
    iam: IAMClient
    ec2: EC2Client


def configured_region() -> str | None:
    """The region boto3 would use (AWS_REGION, AWS_DEFAULT_REGION, the profile's), if any."""
    return boto3.Session().region_name


def make_aws_clients(
    *,
    endpoint_url: str | None,
    region: str | None,
    credentials: StaticCredentials | None = None,
    max_attempts: int = 1,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
) -> AwsClients:
    """Clients for real AWS (endpoint_url None) or an emulator at endpoint_url.

    Without explicit credentials boto3's default chain applies (environment, profile, instance
    role). botocore's standard retry mode makes up to max_attempts attempts per call; the default
    of 1 leaves all retrying to the adapters' policy (retry.py), whose per-fault budgets then
    bound the time a call takes, and which counts and logs every retry.
    """
    session = boto3.Session(
        region_name=region,
        aws_access_key_id=credentials.access_key_id if credentials else None,
        aws_secret_access_key=credentials.secret_access_key if credentials else None,
        aws_session_token=credentials.session_token if credentials else None,
    )
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return AwsClients(
        iam=session.client("iam", endpoint_url=endpoint_url, config=config),
        ec2=session.client("ec2", endpoint_url=endpoint_url, config=config),
    )
