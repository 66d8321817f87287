"""A broker that starts with unfinished work finishes it on its own."""

from datetime import UTC, datetime
from pathlib import Path

from accessbroker.v1 import broker_pb2 as pb
from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.domain.access import Access
from broker.domain.grants import GrantRequest, GrantScope, new_grant
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED
from tests.e2e.broker_process import BrokerProcess
from tests.places import HOME
from tests.waiting import wait_for

GRANT_ID = "6f1c2b9e-0d4a-4c1e-9a57-3b8f2e1d7c40"


def _record_pending_grant(database_url: str, instance_id: str, bucket: str) -> None:
    """What a broker killed right after recording its intent leaves behind."""
    engine = create_engine_for(database_url)
    upgrade_to_head(engine)
    request = GrantRequest(
        instance_id=instance_id,
        place=HOME,
        scope=GrantScope(bucket=bucket, prefix="left/", access=Access.UPLOAD),
        ttl=None,
        reason="interrupted",
        requested_by="anonymous",
    )
    with sql_unit_of_work_factory(engine)() as uow:
        uow.grants.add(new_grant(GRANT_ID, request, datetime.now(UTC)))
        uow.commit()
    engine.dispose()


def test_a_pending_grant_is_finished_when_the_broker_starts(
    emulator: Emulator, tmp_path: Path, buckets: tuple[str, str]
) -> None:
    instance_id = emulator.run_instance()
    database_url = f"sqlite:///{tmp_path / 'broker.db'}"
    _record_pending_grant(database_url, instance_id, buckets[0])

    process = BrokerProcess(emulator, database_url)
    process.start()
    try:
        stub = process.stub
        # The sweep at start finishes the grant in a thread of its own, as fast as the machine
        # lets it: wait for the grant to leave PENDING, then check where it went.
        finished = wait_for(
            lambda: pb.GrantState.Name(
                stub.GetGrant(pb.GetGrantRequest(grant_id=GRANT_ID), timeout=10).state
            ),
            lambda state: state != "GRANT_STATE_PENDING",
            what="the sweep at start finishing the pending grant",
        )
        events = stub.ListAuditEvents(pb.ListAuditEventsRequest(grant_id=GRANT_ID)).events
    finally:
        process.stop()

    assert finished == "GRANT_STATE_ACTIVE"
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "left/x") == ALLOWED
    assert [(e.action, e.actor) for e in events] == [("grant.active", "system")]
