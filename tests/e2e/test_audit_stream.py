"""WatchAuditEvents on the real server: replay from a cursor, live events, resume without gaps."""

import threading
from collections.abc import Callable, Iterator
from typing import Any

from accessbroker.client import FEED_START_METADATA
from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from tests.e2e.calls import grant


def _take(stream: Iterator[pb.AuditEvent], count: int) -> list[pb.AuditEvent]:
    return [next(stream) for _ in range(count)]


def _watch(
    stub: broker_pb2_grpc.AccessBrokerStub, request: pb.WatchAuditEventsRequest
) -> tuple[Iterator[pb.AuditEvent], Callable[[], object]]:
    """The stream's events, and how to hang up."""
    call = stub.WatchAuditEvents(request, timeout=30)
    return iter(call), call.cancel


def test_stream_replays_then_follows_and_resumes_without_gaps_or_duplicates(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, buckets: tuple[str, str]
) -> None:
    granted = grant(stub, instance_id, buckets[0]).grant
    trail = list(stub.ListAuditEvents(pb.ListAuditEventsRequest(instance_id=instance_id)).events)
    watch = pb.WatchAuditEventsRequest(after_event_id=0, instance_id=instance_id)

    first, hang_up = _watch(stub, watch)
    replayed = _take(first, len(trail))
    # A revocation while we watch arrives live; we read part of it, then drop the connection.
    threading.Thread(
        target=stub.RevokeAccess, args=(pb.RevokeAccessRequest(grant_id=granted.grant_id),)
    ).start()
    live = _take(first, 3)
    hang_up()

    resume = pb.WatchAuditEventsRequest(after_event_id=live[-1].event_id, instance_id=instance_id)
    second, hang_up = _watch(stub, resume)
    rest: list[pb.AuditEvent] = []
    while not rest or rest[-1].action != "grant.revoked":
        rest.append(next(second))
    hang_up()

    whole = list(stub.ListAuditEvents(pb.ListAuditEventsRequest(instance_id=instance_id)).events)
    assert replayed == trail
    assert [e.event_id for e in replayed + live + rest] == [e.event_id for e in whole]
    assert live[0].action == "grant.revoke_requested"


def test_stream_without_cursor_starts_with_new_events(
    stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str, buckets: tuple[str, str]
) -> None:
    grant(stub, instance_id, buckets[0], prefix="old/")
    # Streaming calls are untyped in grpc-stubs beyond iteration.
    call: Any = stub.WatchAuditEvents(
        pb.WatchAuditEventsRequest(instance_id=instance_id), timeout=30
    )
    # The stream's headers name where it starts; once they are here, what follows is new.
    start = dict(call.initial_metadata())[FEED_START_METADATA]
    stream, hang_up = iter(call), call.cancel
    grant(stub, instance_id, buckets[0], prefix="new/")

    first = next(stream)
    hang_up()

    assert first.action == "grant.requested"
    assert '"prefix": "new/"' in first.detail
    assert first.event_id > int(start)
