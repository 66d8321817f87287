"""`access-broker demo`: the whole story against the sandbox, told step by step.

Access is checked the way it matters: with the credentials EC2 would hand the instance (its
profile's role), the demo tries the S3 call itself.
"""

import json
from collections.abc import Callable

import grpc

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.entrypoints.grpc.server import start_server
from broker.entrypoints.sandbox import Sandbox, sandbox
from broker.sandbox.instance_view import ALLOWED, S3Action
from broker.settings import Settings

PREFIX = "reports/"


class Story:
    """Narrates each step and remembers whether every expectation held."""

    def __init__(
        self, box: Sandbox, stub: broker_pb2_grpc.AccessBrokerStub, say: Callable[[str], None]
    ):
        self.box, self.stub, self.say = box, stub, say
        self.failures = 0

    def expect_s3(self, action: S3Action, bucket: str, key: str, allowed: bool) -> None:
        outcome = self.box.emulator.try_as_instance(self.box.instance_id, action, bucket, key)
        held = (outcome == ALLOWED) == allowed
        self.failures += not held
        mark = "ok " if held else "UNEXPECTED"
        self.say(f"   [{mark}] as the instance, {action} s3://{bucket}/{key}: {outcome}")

    def expect(self, what: str, held: bool) -> None:
        self.failures += not held
        self.say(f"   [{'ok ' if held else 'UNEXPECTED'}] {what}")


def run_demo(say: Callable[[str], None] = print) -> int:
    """Plays the story; 0 when every step behaved as the broker promises."""
    settings = Settings(listen="127.0.0.1:0", propagation_timeout=30)
    with sandbox(settings) as box:
        running = start_server(box.runtime.deps, "127.0.0.1:0", box.runtime.database_reachable)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                story = Story(box, broker_pb2_grpc.AccessBrokerStub(channel), say)
                _tell(story)
        finally:
            running.stop(grace=0)
    say(
        "\nEvery step behaved as expected."
        if not story.failures
        else f"\n{story.failures} step(s) did not behave as expected."
    )
    return 0 if story.failures == 0 else 1


def _tell(story: Story) -> None:
    box, stub, say = story.box, story.stub, story.say
    data, other, key = box.bucket, box.other_bucket, f"{PREFIX}q3.csv"
    say(f"Sandbox: instance {box.instance_id}, buckets {data} and {other}.\n")

    say("1. Before any grant the instance has no role, so S3 refuses it.")
    story.expect_s3("PutObject", data, key, allowed=False)

    say(f"\n2. GrantAccess: upload to s3://{data}/{PREFIX}")
    response = stub.GrantAccess(
        pb.GrantAccessRequest(
            instance_id=box.instance_id,
            bucket=data,
            access=pb.ACCESS_UPLOAD,
            prefix=PREFIX,
            reason="nightly report upload",
        )
    )
    grant = response.grant
    say(f"   grant {grant.grant_id}: {pb.GrantState.Name(grant.state)}")
    say(f"   role {grant.role_arn}")
    say(f"   profile {grant.instance_profile_arn}, association {grant.association_id}")
    say("   policy:\n" + _indent(json.dumps(json.loads(response.policy_document), indent=2)))
    story.expect("the grant is active", grant.state == pb.GRANT_STATE_ACTIVE)

    say("\n3. The instance can now upload under the prefix, and nothing else.")
    story.expect_s3("PutObject", data, key, allowed=True)
    story.expect_s3("PutObject", data, "elsewhere/q3.csv", allowed=False)
    story.expect_s3("PutObject", other, key, allowed=False)
    story.expect_s3("GetObject", data, key, allowed=False)

    say(f"\n4. RevokeAccess {grant.grant_id}")
    revoked = stub.RevokeAccess(
        pb.RevokeAccessRequest(grant_id=grant.grant_id, reason="demo over")
    ).grant
    say(f"   grant {revoked.grant_id}: {pb.GrantState.Name(revoked.state)}")
    story.expect("the grant is revoked", revoked.state == pb.GRANT_STATE_REVOKED)
    access = stub.DescribeInstanceAccess(
        pb.DescribeInstanceAccessRequest(instance_id=box.instance_id)
    )
    story.expect(
        "no role, profile or association is left", not (access.role_arn or access.association_id)
    )

    say("\n5. The upload is refused again.")
    story.expect_s3("PutObject", data, key, allowed=False)

    say("\n6. The audit trail:")
    events = stub.ListAuditEvents(pb.ListAuditEventsRequest(instance_id=box.instance_id)).events
    for event in events:
        say(f"   #{event.event_id:<3} {event.action:<34} {event.outcome:<8} {event.grant_id or ''}")


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())
