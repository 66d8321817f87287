"""AWS as the contract tests see it: the Iam and Ec2 ports, and a world around them.

The world does what the ports cannot: run and terminate instances, and act behind the broker's
back as an operator would (a role someone else made, a policy attached by hand), and read what
AWS itself holds. It is written once for the fake and once for the emulator, so each contract
test arranges and checks the same way on both.
"""

import json
import uuid
from typing import Any, Protocol

from broker.adapters.aws import BotoEc2, BotoIam
from broker.domain.naming import DEFAULT_ROLE_PATH, ManagedNames
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator
from broker.service.ports import Ec2, Iam
from tests.integration.aws.clients import admin_clients
from tests.integration.aws.names import fresh_instance_id
from tests.places import at_home
from tests.unit.service.fakes import ACCOUNT, FakeAws, FakeProfile, FakeRole

# The tags of what the broker creates for an instance (any instance: these tests use the names
# they are given, not the instance's).
MANAGED_TAGS = ManagedNames(at_home("i-0123456789abcdef0"), DEFAULT_ROLE_PATH).tags
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/p*"}],
}
# How long the emulated adapters wait for a missing role or profile to appear. The emulator has
# no propagation delay, so only the tests of what never appears wait, and this long.
PROPAGATION_TIMEOUT = 1.0


def unique(what: str) -> str:
    """A fresh name: the emulator is shared by the whole session and never reset."""
    return f"accessbroker-test-{what}-{uuid.uuid4().hex[:12]}"


class AwsWorld(Protocol):
    @property
    def iam(self) -> Iam: ...
    @property
    def ec2(self) -> Ec2: ...

    def run_instance(self, tags: dict[str, str] | None = None) -> str:
        """The id of a new running instance without an instance profile."""
        ...

    def terminate(self, instance_id: str) -> None: ...
    def create_foreign_role(self, name: str, tags: dict[str, str]) -> None:
        """A role someone else made, trusting EC2, on the default path "/"."""
        ...

    def create_foreign_profile(self, name: str) -> None:
        """An untagged instance profile someone else made, on the default path "/"."""
        ...

    def put_policy_by_hand(self, role: str, policy_name: str, document: dict[str, Any]) -> None:
        """An inline policy an operator put on the role."""
        ...

    def create_managed_policy(self) -> str:
        """The ARN of a new customer managed policy."""
        ...

    def attach_by_hand(self, role: str, policy_arn: str) -> None: ...
    def attached_policies(self, role: str) -> list[str]:
        """The ARNs of the managed policies IAM holds attached to the role."""
        ...

    def trust_policy(self, role: str) -> dict[str, Any]:
        """The role's trust policy as IAM holds it."""
        ...

    def permissions_boundary(self, role: str) -> str:
        """The ARN of the role's permissions boundary, "" when it has none."""
        ...


class FakeAwsWorld:
    """A fresh FakeAws per test, arranged by changing its model directly."""

    def __init__(self) -> None:
        self.fake = FakeAws()
        self.iam: Iam = self.fake
        self.ec2: Ec2 = self.fake

    def run_instance(self, tags: dict[str, str] | None = None) -> str:
        instance_id = fresh_instance_id()
        self.fake.instances.add(instance_id)
        self.fake.instance_tags[instance_id] = dict(tags or {})
        return instance_id

    def terminate(self, instance_id: str) -> None:
        self.fake.terminate(instance_id)

    def create_foreign_role(self, name: str, tags: dict[str, str]) -> None:
        self.fake.roles[name] = FakeRole(name, "/", json.loads(EC2_TRUST_POLICY), dict(tags))

    def create_foreign_profile(self, name: str) -> None:
        self.fake.profiles[name] = FakeProfile(name, "/", {})

    def put_policy_by_hand(self, role: str, policy_name: str, document: dict[str, Any]) -> None:
        self.fake.roles[role].policies[policy_name] = document

    def create_managed_policy(self) -> str:
        # The fake keeps no managed policies of its own, only the ARNs attached to roles.
        return f"arn:aws:iam::{ACCOUNT}:policy/{unique('policy')}"

    def attach_by_hand(self, role: str, policy_arn: str) -> None:
        self.fake.roles[role].attached.append(policy_arn)

    def attached_policies(self, role: str) -> list[str]:
        return list(self.fake.roles[role].attached)

    def trust_policy(self, role: str) -> dict[str, Any]:
        return self.fake.roles[role].trust

    def permissions_boundary(self, role: str) -> str:
        return self.fake.roles[role].boundary


class EmulatedAws:
    """BotoIam and BotoEc2 on the emulator, signed as its admin; arranged with boto3 clients of
    the emulator, as an operator would."""

    def __init__(self, emulator: Emulator) -> None:
        clients = admin_clients(emulator)
        self.iam: Iam = BotoIam(clients.iam, propagation_timeout=PROPAGATION_TIMEOUT)
        self.ec2: Ec2 = BotoEc2(clients.ec2, propagation_timeout=PROPAGATION_TIMEOUT)
        self._emulator = emulator
        self._raw_iam = emulator.client("iam")
        self._raw_ec2 = emulator.client("ec2")

    def run_instance(self, tags: dict[str, str] | None = None) -> str:
        instance_id = self._emulator.run_instance()
        if tags:
            self._raw_ec2.create_tags(
                Resources=[instance_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )
        return instance_id

    def terminate(self, instance_id: str) -> None:
        self._raw_ec2.terminate_instances(InstanceIds=[instance_id])

    def create_foreign_role(self, name: str, tags: dict[str, str]) -> None:
        self._raw_iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=EC2_TRUST_POLICY,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )

    def create_foreign_profile(self, name: str) -> None:
        self._raw_iam.create_instance_profile(InstanceProfileName=name)

    def put_policy_by_hand(self, role: str, policy_name: str, document: dict[str, Any]) -> None:
        self._raw_iam.put_role_policy(
            RoleName=role, PolicyName=policy_name, PolicyDocument=json.dumps(document)
        )

    def create_managed_policy(self) -> str:
        created = self._raw_iam.create_policy(
            PolicyName=unique("policy"), PolicyDocument=json.dumps(POLICY)
        )
        return created["Policy"]["Arn"]

    def attach_by_hand(self, role: str, policy_arn: str) -> None:
        self._raw_iam.attach_role_policy(RoleName=role, PolicyArn=policy_arn)

    def attached_policies(self, role: str) -> list[str]:
        attached = self._raw_iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        return [policy["PolicyArn"] for policy in attached]

    def trust_policy(self, role: str) -> dict[str, Any]:
        document = self._raw_iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        # boto3 decodes the URL-encoded JSON into a dict, but leaves a string it could not decode.
        return json.loads(document) if isinstance(document, str) else dict(document)

    def permissions_boundary(self, role: str) -> str:
        boundary = self._raw_iam.get_role(RoleName=role)["Role"].get("PermissionsBoundary", {})
        return boundary.get("PermissionsBoundaryArn", "")
