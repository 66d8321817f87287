"""`access-broker demo`: the whole story against the sandbox, told step by step.

The broker serves on loopback and the demo calls it as any service would, through the Python
SDK, with bearer tokens: a service that asks for access, an approver, and an admin who reads
the audit trail, under an access policy where writing to the shared prefix needs approval.
Access is checked the way it matters: with the credentials EC2 would hand the instance (its
profile's role), the demo makes the S3 call itself. Each expectation is exact: a denial must be
S3's AccessDenied, and the clean-up is checked in AWS, not in the broker's own records.
"""

import hashlib
import json
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from accessbroker import Access, BrokerClient, Grant, GrantState
from broker.entrypoints.grpc.security import server_security
from broker.entrypoints.grpc.server import start_server
from broker.sandbox.box import DATA_BUCKET, OTHER_BUCKET, Sandbox, sandbox
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS, S3Action
from broker.settings import Settings

DENIED = "AccessDenied"
REPORTS = "reports/"
REFERENCE = "reference/"
SHARED = "shared/"
SERVICE, APPROVER, ADMIN = "demo-service", "demo-approver", "demo-admin"
# The service reads and uploads at once; writing under shared/ needs the approver's yes.
POLICY = f"""\
admins: [{ADMIN}]
rules:
  - identities: [{SERVICE}]
    buckets: [{DATA_BUCKET}, {OTHER_BUCKET}]
    access: [read, upload]
  - identities: [{SERVICE}]
    buckets: [{DATA_BUCKET}]
    access: [read-write]
    prefixes: ["{SHARED}*"]
    approval: {{approvers: [{APPROVER}]}}
"""


class Story:
    """Narrates each step and counts the expectations that did not hold. `client` calls as the
    service; `as_caller` names the others."""

    def __init__(
        self, box: Sandbox, clients: dict[str, BrokerClient], say: Callable[[str], None]
    ) -> None:
        self.box, self.as_caller, self.say = box, clients, say
        self.client = clients[SERVICE]
        self.failures = 0

    def expect(self, what: str, held: bool) -> None:
        self.failures += not held
        self.say(f"   [{'ok' if held else 'UNEXPECTED'}] {what}")

    def expect_s3(self, action: S3Action, bucket: str, key: str, outcome: str) -> None:
        seen = self.box.emulator.try_as_instance(self.box.instance_id, action, bucket, key)
        self.expect(f"as the instance, {action} s3://{bucket}/{key}: {seen}", seen == outcome)

    def grant(self, bucket: str, access: Access, prefix: str) -> Grant:
        grant = self.client.grant(self.box.instance_id, bucket, access, prefix=prefix).grant
        self.say(f"   grant {grant.grant_id}: {grant.state}")
        self.expect("the grant is active", grant.state is GrantState.ACTIVE)
        return grant

    def revoke(self, grant: Grant) -> None:
        revoked = self.client.revoke(grant.grant_id)
        self.expect(f"grant {revoked.grant_id} is revoked", revoked.state is GrantState.REVOKED)


def run_demo(say: Callable[[str], None] = print) -> int:
    """Plays the story; 0 when every step behaved as the broker promises."""
    with tempfile.TemporaryDirectory(prefix="accessbroker-demo-") as directory:
        tokens = {name: secrets.token_urlsafe(24) for name in (SERVICE, APPROVER, ADMIN)}
        settings = _settings(Path(directory), tokens)
        security = server_security(settings)
        with sandbox(settings) as box:
            running = start_server(
                box.runtime.bus,
                "127.0.0.1:0",
                box.runtime.database_reachable,
                security=security,
            )
            address = f"127.0.0.1:{running.port}"
            clients = {name: BrokerClient(address, token=token) for name, token in tokens.items()}
            try:
                story = Story(box, clients, say)
                _tell(story)
            finally:
                for client in clients.values():
                    client.close()
                running.stop(grace=0)
    if story.failures:
        say(f"\n{story.failures} expectation(s) did not hold.")
        return 1
    say("\nEvery step behaved as expected.")
    return 0


def _tell(story: Story) -> None:
    box, say = story.box, story.say
    data, other, key = box.bucket, box.other_bucket, f"{REPORTS}q3.csv"
    box.emulator.client("s3").put_object(Bucket=other, Key=f"{REFERENCE}rates.csv", Body=b"1")
    say(f"Sandbox: instance {box.instance_id}, buckets {data} and {other}.\n")

    say("1. The instance starts without a role, so it has no AWS credentials at all.")
    story.expect_s3("PutObject", data, key, NO_CREDENTIALS)

    say(f"\n2. GrantAccess: read s3://{other}/{REFERENCE} (now the instance has a role).")
    reading = story.grant(other, Access.READ, REFERENCE)
    story.expect_s3("GetObject", other, f"{REFERENCE}rates.csv", ALLOWED)
    story.expect_s3("PutObject", data, key, DENIED)

    say(f"\n3. GrantAccess: upload to s3://{data}/{REPORTS}")
    uploading = story.grant(data, Access.UPLOAD, REPORTS)
    access = story.client.describe(box.instance_id)
    say(f"   role {access.role_arn}\n   association {access.association_id}")
    _expect_bounded(story)
    say("   policy:\n" + _indent(json.dumps(access.policy, indent=2)))
    story.expect_s3("PutObject", data, key, ALLOWED)
    story.expect_s3("PutObject", data, "elsewhere/q3.csv", DENIED)
    story.expect_s3("PutObject", other, key, DENIED)
    story.expect_s3("GetObject", data, key, DENIED)

    say("\n4. RevokeAccess of the upload grant: uploading is refused again, reading still works.")
    story.revoke(uploading)
    story.expect_s3("PutObject", data, key, DENIED)
    story.expect_s3("GetObject", other, f"{REFERENCE}rates.csv", ALLOWED)

    say(f"\n5. Writing under s3://{data}/{SHARED} needs {APPROVER}'s approval.")
    writing = _approved(story, data)

    say("\n6. RevokeAccess of the last grants: role, profile and association are removed.")
    story.revoke(writing)
    story.revoke(reading)
    _expect_nothing_left(story)
    story.expect_s3("GetObject", other, f"{REFERENCE}rates.csv", NO_CREDENTIALS)

    say(f"\n7. The audit trail, as {ADMIN} reads it:")
    for event in story.as_caller[ADMIN].audit(instance_id=box.instance_id):
        say(f"   #{event.event_id:<3} {event.action:<30} {event.outcome:<8} {event.grant_id}")


def _approved(story: Story, bucket: str) -> Grant:
    """A request that waits, changes nothing in AWS, and is carried out once approved."""
    key = f"{SHARED}notes.txt"
    asked = story.client.grant(story.box.instance_id, bucket, Access.READ_WRITE, prefix=SHARED)
    waiting = asked.grant
    say = story.say
    say(f"   grant {waiting.grant_id}: {waiting.state}, approvers {', '.join(waiting.approvers)}")
    story.expect("it awaits approval", waiting.state is GrantState.AWAITING_APPROVAL)
    story.expect_s3("PutObject", bucket, key, DENIED)
    approved = story.as_caller[APPROVER].approve(waiting.grant_id, reason="shared notes").grant
    say(f"   {APPROVER} approves: {approved.state}")
    story.expect("the approved grant is active", approved.state is GrantState.ACTIVE)
    story.expect_s3("PutObject", bucket, key, ALLOWED)
    return approved


def _settings(directory: Path, tokens: dict[str, str]) -> Settings:
    """The sandbox's settings: bearer tokens for the demo's callers, and its access policy."""
    listed = "".join(
        f"  - identity: {name}\n    sha256: {hashlib.sha256(token.encode()).hexdigest()}\n"
        for name, token in tokens.items()
    )
    (directory / "tokens.yaml").write_text(f"tokens:\n{listed}")
    (directory / "policy.yaml").write_text(POLICY)
    return Settings(
        propagation_timeout=30,
        auth_mode="token",
        tokens_file=directory / "tokens.yaml",
        policy_file=directory / "policy.yaml",
    )


def _expect_bounded(story: Story) -> None:
    """Asks AWS which permissions boundary the role carries: whatever policy the role were
    given, it could do no more than the boundary's S3 actions."""
    name = f"accessbroker-{story.box.instance_id}"
    role = story.box.emulator.client("iam").get_role(RoleName=name)["Role"]
    boundary = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn", "none")
    story.say(f"   permissions boundary {boundary}")
    expected = story.box.settings.permissions_boundary_arn
    story.expect("the role carries the broker's permissions boundary", boundary == expected)


def _expect_nothing_left(story: Story) -> None:
    """Asks AWS itself, not the broker's records."""
    iam, ec2 = story.box.emulator.client("iam"), story.box.emulator.client("ec2")
    name = f"accessbroker-{story.box.instance_id}"
    roles = [
        r["RoleName"] for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]
    ]
    profiles = [
        p["InstanceProfileName"]
        for page in iam.get_paginator("list_instance_profiles").paginate()
        for p in page["InstanceProfiles"]
    ]
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [story.box.instance_id]}]
    )["IamInstanceProfileAssociations"]
    story.expect(f"AWS holds no role {name}", name not in roles)
    story.expect(f"AWS holds no instance profile {name}", name not in profiles)
    story.expect(
        "the instance has no profile association",
        all(a["State"] in ("disassociating", "disassociated") for a in associations),
    )


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())
