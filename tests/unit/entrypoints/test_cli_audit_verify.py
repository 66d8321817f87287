"""`access-broker audit verify` on a SQLite trail: its verdicts, anchors and exit codes."""

from pathlib import Path

import pytest
from sqlalchemy import text

from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.entrypoints.cli import main
from tests.records import append_all, audit_event


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'broker.db'}"


@pytest.fixture
def trail(database_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    """A migrated database holding three audit events; its URL."""
    assert main(["migrate", "--database-url", database_url]) == 0
    engine = create_engine_for(database_url)
    append_all(sql_unit_of_work_factory(engine), [audit_event(n) for n in (1, 2, 3)])
    engine.dispose()
    capsys.readouterr()
    return database_url


def run_sql(database_url: str, statement: str) -> None:
    engine = create_engine_for(database_url)
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def verify(capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str, str]:
    status = main(["audit", "verify", *flags])
    out, err = capsys.readouterr()
    return status, out, err


def test_an_intact_trail_exits_0_printing_the_count_and_an_anchor(
    trail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = verify(capsys, "--database-url", trail)

    first, anchor = out.splitlines()
    assert status == 0
    assert first == "audit chain intact: 3 events"
    assert anchor.startswith("anchor: 3:")
    assert len(anchor.removeprefix("anchor: 3:")) == 64


def test_the_database_comes_from_the_environment_too(
    trail: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_DATABASE_URL", trail)

    status, out, _ = verify(capsys)

    assert status == 0
    assert out.startswith("audit chain intact: 3 events")


def test_an_edited_row_exits_1_naming_the_event(
    trail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_sql(trail, "UPDATE audit_events SET actor = 'mallory' WHERE event_id = 2")

    status, out, _ = verify(capsys, "--database-url", trail)

    assert status == 1
    assert out == (
        "audit chain broken at event 2: its content does not match its hash: the event was edited\n"
    )


def test_a_deleted_row_exits_1_naming_the_event_after_it(
    trail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_sql(trail, "DELETE FROM audit_events WHERE event_id = 2")

    status, out, _ = verify(capsys, "--database-url", trail)

    assert status == 1
    assert out.startswith("audit chain broken at event 3: it does not follow event 1")


def test_a_cut_tail_is_caught_by_the_anchor_printed_before(
    trail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor = verify(capsys, "--database-url", trail)[1].splitlines()[1].removeprefix("anchor: ")
    run_sql(trail, "DELETE FROM audit_events WHERE event_id = 3")

    unanchored = verify(capsys, "--database-url", trail)
    anchored = verify(capsys, "--database-url", trail, "--anchor", anchor)

    assert unanchored[0] == 0
    assert anchored[:2] == (
        1,
        "audit chain broken at event 3: the anchored event is missing: the trail was cut\n",
    )


def test_an_empty_trail_is_intact_without_an_anchor(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["migrate", "--database-url", database_url])
    capsys.readouterr()

    assert verify(capsys, "--database-url", database_url)[:2] == (
        0,
        "audit chain intact: 0 events\n",
    )


def test_an_unmigrated_database_is_not_verified_and_exits_2(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = verify(capsys, "--database-url", database_url)

    assert status == 2
    assert out == ""
    assert "audit chain not verified" in err
    assert "run `access-broker migrate` first" in err


def test_an_unreachable_database_is_not_verified_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = verify(
        capsys, "--database-url", "postgresql+psycopg://postgres@127.0.0.1:1/none"
    )

    assert status == 2
    assert "audit chain not verified: the broker's database is unavailable" in err


def test_a_malformed_anchor_is_a_usage_error(
    trail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "verify", "--database-url", trail, "--anchor", "3:nothex"])

    assert exit_.value.code == 2
    assert "invalid anchor '3:nothex'" in capsys.readouterr().err
