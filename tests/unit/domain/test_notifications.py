"""What a destination is sent for an audit event: a webhook's signed JSON, a Slack message."""

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime

from broker.domain.audit import AuditAction, AuditEvent, Outcome
from broker.domain.notifications import (
    NOTIFIED_ACTIONS,
    Destination,
    DestinationKind,
    delivery,
    slack_message,
)

SECRET = b"webhook-secret-0123"
NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
WEBHOOK = Destination(DestinationKind.WEBHOOK, "http://hooks.test/in", "webhook:1", "http://…")
SLACK = Destination(DestinationKind.SLACK, "https://hooks.slack.test/T/B/x", "slack:1", "https://…")


def event(action: AuditAction = AuditAction.GRANT_APPROVAL_REQUESTED) -> AuditEvent:
    return AuditEvent(
        event_id=42,
        time=NOW,
        actor="team-data-etl",
        action=action,
        outcome=Outcome.SUCCESS,
        instance_id="i-0123456789abcdef0",
        grant_id="g-1",
        detail={
            "state": "awaiting_approval",
            "bucket": "prod-data",
            "prefix": "q4/",
            "access": "read",
            "requested_by": "team-data-etl",
            "request_reason": "quarter close",
            "approvers": ["alice", "sre-*"],
            "required": 2,
        },
    )


def test_a_webhook_delivery_is_signed_over_its_body_which_carries_the_timestamp() -> None:
    sent = delivery(WEBHOOK, event(), SECRET, NOW)

    expected = "sha256=" + hmac.new(SECRET, sent.body, hashlib.sha256).hexdigest()
    assert sent.headers["X-Accessbroker-Signature"] == expected
    document = json.loads(sent.body)
    assert document["sent_at"] == int(NOW.timestamp())
    assert sent.headers["X-Accessbroker-Timestamp"] == str(document["sent_at"])
    assert sent.headers["X-Accessbroker-Event-Id"] == "42"
    assert (document["event_id"], document["type"]) == (42, "grant.approval_requested")
    assert document["detail"]["approvers"] == ["alice", "sre-*"]


def test_another_secret_gives_another_signature() -> None:
    assert (
        delivery(WEBHOOK, event(), SECRET, NOW).headers["X-Accessbroker-Signature"]
        != delivery(WEBHOOK, event(), b"other", NOW).headers["X-Accessbroker-Signature"]
    )


def test_slack_is_told_who_asked_for_what_why_and_how_to_approve() -> None:
    message = slack_message(event())

    text = json.dumps(message)
    assert message["text"] == (
        "grant.approval_requested: read on s3://prod-data/q4/ for i-0123456789abcdef0"
    )
    assert "*Requested by* team-data-etl" in text
    assert "*Reason* quarter close" in text
    assert "Awaiting 2 of alice, sre-*: `brokerctl approve g-1`" in text
    assert "signature" not in json.dumps(delivery(SLACK, event(), SECRET, NOW).headers).lower()


def test_slack_says_where_the_instance_lives() -> None:
    in_prod = replace(
        event(), detail={**event().detail, "region": "eu-west-1", "account": "2" * 12}
    )
    at_home = replace(event(), detail={**event().detail, "region": "us-east-1"})

    assert slack_message(in_prod)["text"].endswith(
        "for i-0123456789abcdef0 in eu-west-1, account 222222222222"
    )
    assert slack_message(at_home)["text"].endswith("for i-0123456789abcdef0 in us-east-1")


def test_every_grant_state_change_is_notified_and_nothing_else() -> None:
    assert {a.value for a in NOTIFIED_ACTIONS} == {
        "grant.requested",
        "grant.approval_requested",
        "grant.approved",
        "grant.denied",
        "grant.approval_expired",
        "grant.active",
        "grant.expired",
        "grant.revoked",
        "grant.failed",
    }
