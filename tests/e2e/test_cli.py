"""brokerctl, the real console script, against a real broker process on the emulator."""

import json
import os
import queue
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from broker.sandbox import Emulator
from tests.e2e.broker_process import BrokerProcess

BROKERCTL = Path(sys.executable).with_name("brokerctl")
CALL_TIMEOUT = 60


def brokerctl(
    broker: BrokerProcess, *argv: str, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BROKER_ADDRESS": broker.address}
    env.pop("BROKERCTL_DEBUG", None)
    done = subprocess.run(
        [str(BROKERCTL), *argv],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
    )
    assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def brokerctl_json(broker: BrokerProcess, *argv: str) -> Any:
    return json.loads(brokerctl(broker, *argv, "-o", "json").stdout)


def assert_one_error_line(stderr: str, *expected: str) -> None:
    """One `brokerctl:` line (indented particulars may follow), and never a traceback."""
    assert "Traceback" not in stderr
    headlines = [line for line in stderr.splitlines() if not line.startswith("  ")]
    assert len(headlines) == 1, stderr
    assert headlines[0].startswith("brokerctl: ")
    for text in expected:
        assert text in stderr


def test_grant_get_list_describe_wait_revoke_and_audit(
    broker: BrokerProcess, instance_id: str, buckets: tuple[str, str]
) -> None:
    bucket = buckets[0]
    grant_args = [
        "grant",
        "--instance",
        instance_id,
        "--bucket",
        bucket,
        "--access",
        "upload",
        "--prefix",
        "reports/",
        "--ttl",
        "8h",
        "--reason",
        "nightly reports",
    ]

    preview = brokerctl_json(broker, *grant_args, "--dry-run")
    assert preview["dry_run"] is True
    assert preview["grant"]["grant_id"] == ""
    assert f"arn:aws:s3:::{bucket}/reports/*" in json.dumps(preview["policy"])
    assert any("create role" in change for change in preview["planned_changes"])
    assert brokerctl_json(broker, "list", "--instance", instance_id) == {"grants": []}

    granted = brokerctl_json(broker, *grant_args)["grant"]
    grant_id = granted["grant_id"]
    assert granted["state"] == "active"
    assert granted["reason"] == "nightly reports"
    created = datetime.fromisoformat(granted["created_at"])
    assert datetime.fromisoformat(granted["expires_at"]) - created == timedelta(hours=8)

    assert brokerctl_json(broker, "get", grant_id) == brokerctl_json(
        broker, "wait", grant_id, "--timeout", "10"
    )
    shown = brokerctl(broker, "get", grant_id).stdout
    assert grant_id in shown and "active" in shown and f"s3://{bucket}/reports/" in shown

    listed = brokerctl_json(broker, "list", "--instance", instance_id, "--bucket", bucket)
    assert [g["grant_id"] for g in listed["grants"]] == [grant_id]
    table = brokerctl(broker, "list", "--instance", instance_id).stdout.splitlines()
    assert table[0].split()[:2] == ["GRANT", "INSTANCE"]
    assert table[1].split()[:5] == [
        grant_id,
        instance_id,
        "upload",
        f"s3://{bucket}/reports/",
        "active",
    ]
    revoked_only = ["list", "--instance", instance_id, "--state", "revoked"]
    assert brokerctl_json(broker, *revoked_only) == {"grants": []}

    described = brokerctl_json(broker, "describe", instance_id)
    assert described["role_name"] == f"accessbroker-{instance_id}"
    assert described["association_id"]
    assert [g["grant_id"] for g in described["grants"]] == [grant_id]
    assert f"arn:aws:s3:::{bucket}/reports/*" in json.dumps(described["policy"])
    human = brokerctl(broker, "describe", instance_id).stdout
    assert f"accessbroker-{instance_id}" in human and '"Version": "2012-10-17"' in human

    revoked = brokerctl_json(broker, "revoke", grant_id, "--reason", "done")
    assert (revoked["grant_id"], revoked["state"]) == (grant_id, "revoked")
    after = brokerctl_json(broker, "describe", instance_id)
    assert (after["grants"], after["policy"], after["association_id"]) == ([], None, "")

    events = brokerctl_json(broker, "audit", "--grant", grant_id)["events"]
    actions = [e["action"] for e in events]
    assert actions[0] == "grant.requested" and "grant.active" in actions
    assert actions[-1] == "grant.revoked"
    assert [e["event_id"] for e in events] == sorted(e["event_id"] for e in events)
    assert all(e["grant_id"] == grant_id for e in events)
    audit_table = brokerctl(broker, "audit", "--instance", instance_id).stdout
    assert "grant.revoked" in audit_table and grant_id in audit_table


def test_errors_exit_with_their_code_and_one_line(
    broker: BrokerProcess, instance_id: str, tmp_path: Path
) -> None:
    bad_bucket = brokerctl(
        broker,
        "grant",
        "--instance",
        instance_id,
        "--bucket",
        "Bad_Bucket",
        "--access",
        "read",
        expect=2,
    )
    assert_one_error_line(bad_bucket.stderr, "INVALID_ARGUMENT", "  bucket: ")
    assert bad_bucket.stdout == ""

    unknown = brokerctl(broker, "get", "00000000-0000-4000-8000-000000000000", expect=3)
    assert_one_error_line(unknown.stderr, "NOT_FOUND", "00000000-0000-4000-8000-000000000000")

    unreachable = brokerctl(broker, "--address", "127.0.0.1:1", "list", expect=5)
    assert_one_error_line(unreachable.stderr, "cannot reach the broker at 127.0.0.1:1")

    request = tmp_path / "access.yaml"
    request.write_text(
        f"instances:\n  {instance_id}:\n    - {{bucket: Bad_Bucket, access: read}}\n"
    )
    refused_entry = brokerctl(broker, "plan", "-f", str(request), expect=2)
    assert_one_error_line(refused_entry.stderr, f"{instance_id}: read on s3://Bad_Bucket/")


def test_plan_and_apply_converge_and_a_second_run_changes_nothing(
    broker: BrokerProcess, emulator: Emulator, buckets: tuple[str, str], tmp_path: Path
) -> None:
    first, second = emulator.run_instance(), emulator.run_instance()
    data, other = buckets
    stray = brokerctl_json(
        broker, "grant", "--instance", first, "--bucket", other, "--access", "read-write"
    )["grant"]
    request = tmp_path / "access.yaml"
    request.write_text(
        f"""instances:
  {first}:
    - {{bucket: {data}, access: upload, prefix: builds/, ttl: 8h, reason: "CI uploads"}}
    - {{bucket: {other}, access: read}}
  {second}:
    - bucket: {data}
      access: list
"""
    )

    planned = brokerctl_json(broker, "plan", "-f", str(request))
    assert sorted((g["instance_id"], g["bucket"], g["access"]) for g in planned["to_grant"]) == (
        sorted([(first, data, "upload"), (first, other, "read"), (second, data, "list")])
    )
    assert [g["grant_id"] for g in planned["to_revoke"]] == [stray["grant_id"]]
    assert planned["unchanged"] == []
    still = brokerctl_json(broker, "list", "--instance", first)["grants"]
    assert [(g["grant_id"], g["state"]) for g in still] == [(stray["grant_id"], "active")]

    applied = brokerctl_json(broker, "apply", "-f", str(request))
    assert [g["state"] for g in applied["granted"]] == ["active"] * 3
    assert [(g["grant_id"], g["state"]) for g in applied["revoked"]] == [
        (stray["grant_id"], "revoked")
    ]
    reapplied = brokerctl_json(broker, "apply", "-f", str(request))
    assert (reapplied["granted"], reapplied["revoked"]) == ([], [])
    assert len(reapplied["unchanged"]) == 3
    replanned = brokerctl_json(broker, "plan", "-f", str(request))
    assert (replanned["to_grant"], replanned["to_revoke"]) == ([], [])
    assert "No changes" in brokerctl(broker, "plan", "-f", str(request)).stdout

    # Revoked by hand: the next apply grants it again, although its idempotency key (derived
    # from the file) was used before.
    upload = next(g for g in applied["granted"] if g["access"] == "upload")
    brokerctl(broker, "revoke", upload["grant_id"])
    again = brokerctl_json(broker, "apply", "-f", str(request))
    [regranted] = again["granted"]
    assert (regranted["bucket"], regranted["prefix"], regranted["state"]) == (
        data,
        "builds/",
        "active",
    )
    assert regranted["grant_id"] != upload["grant_id"]
    assert brokerctl_json(broker, "plan", "-f", str(request))["to_grant"] == []


def test_audit_follow_prints_the_trail_then_new_events_as_json_lines(
    broker: BrokerProcess, instance_id: str, buckets: tuple[str, str]
) -> None:
    first = brokerctl_json(
        broker, "grant", "--instance", instance_id, "--bucket", buckets[0], "--access", "list"
    )["grant"]
    env = {**os.environ, "BROKER_ADDRESS": broker.address}
    follower = subprocess.Popen(
        [str(BROKERCTL), "audit", "--follow", "--instance", instance_id, "-o", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    stdout = follower.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()

    def events_until(action: str, grant_id: str) -> list[dict[str, Any]]:
        seen = []
        while True:
            event = json.loads(lines.get(timeout=20))
            seen.append(event)
            if (event["action"], event["grant_id"]) == (action, grant_id):
                return seen

    try:
        replayed = events_until("grant.active", first["grant_id"])
        second = brokerctl_json(
            broker, "grant", "--instance", instance_id, "--bucket", buckets[1], "--access", "list"
        )["grant"]
        followed = events_until("grant.active", second["grant_id"])
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    ids = [e["event_id"] for e in replayed + followed]
    assert ids == sorted(set(ids))
    assert {e["instance_id"] for e in replayed + followed} == {instance_id}
    assert followed[0]["action"] == "grant.requested"
