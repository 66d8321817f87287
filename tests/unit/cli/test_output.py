import json
from datetime import UTC, datetime, timedelta, timezone

from accessbroker.cli import output
from accessbroker.cli.declarative import plan_text
from accessbroker.cli.plan import Plan
from accessbroker.cli.requestfile import DesiredGrant
from accessbroker.models import Access, GrantState
from tests.unit.cli.factories import INSTANCE, T0, make_event, make_grant


def test_grants_as_json_have_every_key_iso_times_and_words_for_enums() -> None:
    grant = make_grant(expires_at=T0 + timedelta(hours=8))
    document = json.loads(output.dumps({"grants": [grant]}))
    [parsed] = document["grants"]
    assert list(parsed) == [
        "grant_id",
        "instance_id",
        "bucket",
        "prefix",
        "access",
        "state",
        "role_name",
        "role_arn",
        "instance_profile_name",
        "instance_profile_arn",
        "association_id",
        "created_at",
        "updated_at",
        "expires_at",
        "requested_by",
        "reason",
        "failure_reason",
        "approvers",
        "approvals_required",
        "approvals",
        "account",
        "region",
    ]
    assert (parsed["approvers"], parsed["approvals"]) == ([], [])
    assert parsed["state"] == "active"
    assert parsed["access"] == "upload"
    assert parsed["created_at"] == "2026-11-28T04:11:22.123456Z"
    assert datetime.fromisoformat(parsed["expires_at"]) == T0 + timedelta(hours=8)
    assert json.loads(output.dumps(make_grant()))["expires_at"] is None


def test_json_lines_are_one_compact_line_each() -> None:
    line = output.dumps(make_event(9, grant_id="g"), lines=True)
    assert "\n" not in line
    assert json.loads(line) == {
        "event_id": 9,
        "time": "2026-11-28T04:11:22.123456Z",
        "actor": "anonymous",
        "action": "grant.active",
        "grant_id": "g",
        "instance_id": INSTANCE,
        "outcome": "success",
        "detail": {"bucket": "ci-artifacts", "nested": {"n": 1}},
    }


def test_times_read_as_utc_to_the_second() -> None:
    eastern = datetime(2026, 11, 28, 5, 11, 22, tzinfo=timezone(timedelta(hours=1)))
    assert output.format_time(eastern) == "2026-11-28 04:11:22Z"
    assert output.format_time(None) == "-"
    assert output.to_json_value(eastern) == "2026-11-28T04:11:22Z"
    assert output.to_json_value(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"


def test_tables_align_their_columns() -> None:
    text = output.table(("A", "LONGER"), [["wide cell", "x"], ["b", "yy"]])
    assert text.splitlines() == [
        "A          LONGER",
        "wide cell  x",
        "b          yy",
    ]


def test_grants_table_shows_ids_states_locations_and_times() -> None:
    pending = make_grant(
        "22222222-2222-2222-2222-222222222222",
        state=GrantState.PENDING,
        bucket="datasets",
        prefix="",
        access=Access.READ,
    )
    lines = output.grants_table([make_grant(), pending]).splitlines()
    assert lines[0].split() == [
        "GRANT",
        "INSTANCE",
        "ACCESS",
        "LOCATION",
        "STATE",
        "EXPIRES",
        "CREATED",
    ]
    assert lines[1].split() == [
        "11111111-1111-1111-1111-111111111111",
        INSTANCE,
        "upload",
        "s3://ci-artifacts/builds/",
        "active",
        "-",
        "2026-11-28",
        "04:11:22Z",
    ]
    assert lines[2].split()[3:5] == ["s3://datasets/", "pending"]
    assert lines[1].index("active") == lines[2].index("pending")
    assert output.grants_table([]) == "No grants."


def test_grant_details_and_events() -> None:
    details = output.grant_details(make_grant())
    assert "state:             active" in details
    assert "instance profile:  accessbroker-" in details
    assert "2026-11-28 04:11:22Z" in output.events_table([make_event()])
    header, line = output.follow_header(), output.event_line(make_event(7, grant_id="g-1"))
    assert header.index("ACTION") == line.index("grant.active")
    assert output.events_table([]) == "No audit events."


def test_plan_text_lists_changes_or_says_there_are_none() -> None:
    desired = DesiredGrant(INSTANCE, "datasets", Access.READ, "", timedelta(hours=8), "why")
    text = plan_text(Plan(to_grant=[desired], to_revoke=[make_grant()]), "access.yaml")
    lines = text.splitlines()
    assert lines[1].split()[:5] == ["+", "grant", INSTANCE, "read", "s3://datasets/"]
    assert "ttl 8h" in lines[1]
    assert lines[2].split()[:5] == ["-", "revoke", INSTANCE, "upload", "s3://ci-artifacts/builds/"]
    assert "grant 11111111-1111-1111-1111-111111111111" in lines[2]
    assert lines[-1].startswith("Plan: 1 to grant, 1 to revoke, 0 unchanged.")
    assert plan_text(Plan(unchanged=[make_grant()]), "a.yaml").startswith("No changes")
