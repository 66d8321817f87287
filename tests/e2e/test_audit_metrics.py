"""The sweep verifies the audit trail's hash chain and /metrics says the verdict: intact while
it is, broken (0) once someone edits an event in the database behind the broker's back."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from accessbroker.v1 import broker_pb2 as pb
from broker.sandbox import Emulator
from tests.e2e.broker_process import BrokerProcess
from tests.waiting import wait_for


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "broker.db"


@pytest.fixture
def broker(emulator: Emulator, database: Path) -> Iterator[BrokerProcess]:
    process = BrokerProcess(
        emulator,
        f"sqlite:///{database}",
        # Every sweep verifies the chain: the test waits seconds, not an hour.
        BROKER_SWEEP_INTERVAL_SECONDS="1",
        BROKER_AUDIT_VERIFY_INTERVAL_SECONDS="1",
    )
    process.start()
    yield process
    process.stop()


def audit_metrics(broker: BrokerProcess) -> dict[str, float]:
    return {sample.name: sample.value for sample in broker.samples("accessbroker_audit_chain_")}


def test_an_event_edited_in_the_database_shows_as_a_broken_chain(
    broker: BrokerProcess, database: Path, instance_id: str, buckets: tuple[str, str]
) -> None:
    request = pb.GrantAccessRequest(
        instance_id=instance_id, bucket=buckets[0], access=pb.ACCESS_UPLOAD
    )
    broker.stub.GrantAccess(request, timeout=60)

    intact = wait_for(
        lambda: audit_metrics(broker),
        lambda seen: seen.get("accessbroker_audit_chain_verified_events", 0) > 0,
        what="a verification that saw the grant's events",
    )
    assert intact["accessbroker_audit_chain_intact"] == 1

    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE audit_events SET actor = 'mallory' WHERE event_id = 1")

    broken = wait_for(
        lambda: audit_metrics(broker),
        lambda seen: seen.get("accessbroker_audit_chain_intact") == 0,
        what="a verification that finds the edit",
    )
    assert broken["accessbroker_audit_chain_verified_events"] == 0  # event 1 itself was edited
    log = "".join(broker.output)
    assert "hash chain is broken at event 1: its content does not match its hash" in log
