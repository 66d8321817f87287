"""The gRPC surface over fake ports: status codes, error details, health, and no leaked details."""

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.errors import AwsUnavailable
from broker.entrypoints.grpc.errors import INTERNAL_MESSAGE
from broker.entrypoints.grpc.servicer import FEED_START_METADATA, MAX_STREAMS
from broker.service.ports import UnitOfWork
from tests.rpc import refusal
from tests.unit.entrypoints.serving import channel_to
from tests.unit.service.fakes import INSTANCE, World
from tests.waiting import wait_for


def _upload() -> pb.GrantAccessRequest:
    return pb.GrantAccessRequest(instance_id=INSTANCE, bucket="photos", access=pb.ACCESS_UPLOAD)


def test_aws_unavailable_is_unavailable_and_records_nothing(
    w: World, stub: broker_pb2_grpc.AccessBrokerStub
) -> None:
    w.aws.fail("find_instance", AwsUnavailable("AWS DescribeInstances failed: Throttling"))

    refused = refusal(lambda: stub.GrantAccess(_upload()))

    assert refused.code == grpc.StatusCode.UNAVAILABLE
    assert "Throttling" in refused.message
    assert w.db.grants() == []
    assert w.aws.calls == []


def test_unexpected_error_is_internal_with_a_generic_message(w: World) -> None:
    def broken_database(*, read_only: bool = False) -> UnitOfWork:
        raise RuntimeError("connection to db.internal:5432 failed for user broker")

    with channel_to(w.with_store(broken_database).bus) as channel:
        stub = broker_pb2_grpc.AccessBrokerStub(channel)
        refused = refusal(lambda: stub.GrantAccess(_upload()))

    assert refused.code == grpc.StatusCode.INTERNAL
    assert refused.message == INTERNAL_MESSAGE


def test_invalid_argument_carries_field_violations(stub: broker_pb2_grpc.AccessBrokerStub) -> None:
    request = pb.GrantAccessRequest(instance_id="i-1", bucket="ok-bucket", access=pb.ACCESS_READ)

    refused = refusal(lambda: stub.GrantAccess(request))

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(refused.violations) == {"instance_id"}
    assert "i-0123456789abcdef0" in refused.violations["instance_id"]


def test_out_of_range_enum_values_are_invalid_arguments(
    stub: broker_pb2_grpc.AccessBrokerStub,
) -> None:
    grant = pb.GrantAccessRequest(instance_id=INSTANCE, bucket="photos", access=99)  # type: ignore[arg-type]
    listing = pb.ListGrantsRequest(state=42)  # type: ignore[arg-type]

    assert refusal(lambda: stub.GrantAccess(grant)).violations.keys() == {"access"}
    assert refusal(lambda: stub.ListGrants(listing)).violations.keys() == {"state"}


@pytest.mark.parametrize("seconds", [0, -60, 101 * 366 * 24 * 3600, 2**62])
def test_a_ttl_out_of_bounds_is_refused(
    stub: broker_pb2_grpc.AccessBrokerStub, seconds: int
) -> None:
    request = _upload()
    request.ttl.seconds = seconds

    assert refusal(lambda: stub.GrantAccess(request)).violations.keys() == {"ttl"}


@pytest.mark.parametrize(
    ("database_up", "expected"),
    [
        (True, health_pb2.HealthCheckResponse.SERVING),
        (False, health_pb2.HealthCheckResponse.NOT_SERVING),
    ],
)
def test_health_follows_the_database(w: World, database_up: bool, expected: int) -> None:
    with channel_to(w.bus, database_up=database_up) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())

    assert status.status == expected


def test_audit_streams_beyond_the_limit_are_resource_exhausted(w: World) -> None:
    # Workers enough for every stream and then some: the limit, not the pool, must refuse.
    with channel_to(w.bus, workers=MAX_STREAMS + 2) as channel:
        stub = broker_pb2_grpc.AccessBrokerStub(channel)
        # Streaming calls are untyped in grpc-stubs beyond iteration.
        streams: list[Any] = [
            stub.WatchAuditEvents(pb.WatchAuditEventsRequest()) for _ in range(MAX_STREAMS)
        ]
        for stream in streams:
            stream.initial_metadata()  # each holds its place once its headers have come
        extra = stub.WatchAuditEvents(pb.WatchAuditEventsRequest())

        refused = refusal(lambda: next(iter(extra)))
        streams[0].cancel()
        # The server notices the hang-up at its next poll of the feed and frees the place then;
        # until it does, a new stream is refused.
        again = wait_for(
            lambda: _accepted_stream(stub),
            lambda stream: stream is not None,
            what="a new audit stream accepted once one of the full set hung up",
        )
        for stream in [*streams[1:], again]:
            stream.cancel()

    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"{MAX_STREAMS} audit streams" in refused.message
    assert again.code() is None or again.code() == grpc.StatusCode.CANCELLED


def _accepted_stream(stub: broker_pb2_grpc.AccessBrokerStub) -> Any:
    """A new audit stream if the server accepted it, None if it refused it as one too many."""
    stream: Any = stub.WatchAuditEvents(pb.WatchAuditEventsRequest())
    # An accepted stream's headers say where its feed starts; a refused one ends without any.
    if FEED_START_METADATA in dict(stream.initial_metadata() or ()):
        return stream
    assert stream.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, stream.details()
    return None
