"""Spoke accounts in the emulator, set up as deploy/iam tells a platform team to set them up.

moto keeps one backend per account. Each spoke gets, in its own backend, the role the broker
assumes (`accessbroker-spoke`, holding deploy/iam/spoke-permissions-policy.json), and an
owner's role with every permission, through which the test arranges the spoke (launches its
instances, changes things behind the broker's back) as the account's owner would. Calls made
with a role's assumed credentials act in the spoke, authorized against that role's policies.
"""

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import moto.ec2.models.instances
import pytest

from broker.sandbox import Credentials, Emulator
from broker.sandbox.emulator import SANDBOX_AMI_ID, mint_role_credentials
from broker.sandbox.instance_view import S3Action, instance_role_arn, s3_outcome
from tests.moto_accounts import fresh_account_id, seed_role

IAM_DOCUMENTS = Path(__file__).parents[2] / "deploy" / "iam"
SPOKE_ROLE = "accessbroker-spoke"
_OWNER_ROLE = "spoke-owner"
_EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def deploy_document(name: str, **placeholders: str) -> dict[str, Any]:
    """A policy document of deploy/iam with its placeholders (SPOKE_ACCOUNT_ID, …) filled in."""
    text = (IAM_DOCUMENTS / name).read_text()
    for placeholder, value in placeholders.items():
        text = text.replace(placeholder, value)
    document: dict[str, Any] = json.loads(text)
    return document


def hub_policy() -> dict[str, Any]:
    """What the broker's own identity holds in a hub and spoke deployment: broker-policy.json
    for the home account, and the right to assume the spokes' role."""
    statements = [
        *deploy_document("broker-policy.json")["Statement"],
        *deploy_document("hub-assume-spokes-policy.json")["Statement"],
    ]
    return {"Version": "2012-10-17", "Statement": statements}


class Spoke:
    """One spoke account: its id, its name in the accounts file, and its owner's view of it."""

    def __init__(
        self, emulator: Emulator, name: str, regions: tuple[str, ...], *, bounded: bool = True
    ) -> None:
        self.emulator, self.name, self.regions = emulator, name, regions
        self.id = fresh_account_id()
        self.external_id = f"ext-{uuid.uuid4().hex[:12]}"
        permissions = deploy_document("spoke-permissions-policy.json", SPOKE_ACCOUNT_ID=self.id)
        self.role_arn = seed_role(self.id, SPOKE_ROLE, permissions)
        # The broker's roles here carry the account's own boundary, of the home one's name
        # (`bounded=False`: a spoke where the platform team forgot it).
        if bounded:
            emulator.permissions_boundary(self.id)
        self._owner = _assumed(emulator, seed_role(self.id, _OWNER_ROLE, _EVERYTHING))

    def accounts_entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role_arn": self.role_arn,
            "external_id": self.external_id,
            "regions": list(self.regions),
        }

    def client(self, service: str, region: str = "") -> Any:
        """A client of the spoke's owner."""
        return _client(self.emulator, service, self._owner, region or self.regions[0])

    def broker_client(self, service: str) -> Any:
        """A client signed as the broker is in the spoke: its role there, assumed."""
        return self.client_as(service, _assumed(self.emulator, self.role_arn))

    def client_as(self, service: str, credentials: Credentials) -> Any:
        """A client of the spoke signed with `credentials` (a role's of the spoke)."""
        return _client(self.emulator, service, credentials, self.regions[0])

    def run_instance(self, region: str = "") -> str:
        reservation = self.client("ec2", region).run_instances(
            ImageId=SANDBOX_AMI_ID, InstanceType="t3.micro", MinCount=1, MaxCount=1
        )
        return str(reservation["Instances"][0]["InstanceId"])

    def role_names(self) -> set[str]:
        return {role["RoleName"] for role in self.client("iam").list_roles()["Roles"]}

    def try_as_instance(
        self, instance_id: str, action: S3Action, bucket: str, key: str, region: str = ""
    ) -> str:
        """What S3 answers the instance, with the credentials EC2 would hand it in the spoke."""
        ec2, iam = self.client("ec2", region), self.client("iam")
        role_arn = instance_role_arn(ec2, iam, instance_id)
        if role_arn is None:
            return "no credentials"
        credentials = mint_role_credentials(role_arn)
        return s3_outcome(
            _client(self.emulator, "s3", credentials, "us-east-1"), action, bucket, key
        )


def launch_with_id(monkeypatch: pytest.MonkeyPatch, instance_id: str, *spokes: Spoke) -> None:
    """Launches an instance in each spoke, each with this id: how the same id comes to name
    instances in two accounts."""
    with monkeypatch.context() as patched:
        patched.setattr(moto.ec2.models.instances, "random_instance_id", lambda: instance_id)
        for spoke in spokes:
            assert spoke.run_instance() == instance_id


def _assumed(emulator: Emulator, role_arn: str) -> Credentials:
    answer = emulator.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="owner")
    key = answer["Credentials"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"], key["SessionToken"])


def _client(emulator: Emulator, service: str, credentials: Credentials, region: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=emulator.endpoint_url,
        region_name=region,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    )
