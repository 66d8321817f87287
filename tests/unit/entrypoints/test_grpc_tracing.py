"""The RPC's span: named for the method, continuing the caller's trace, with the code the caller
got; failed only when the server failed (not for a caller's mistake); none for health checks."""

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.errors import AwsUnavailable
from tests.rpc import refusal
from tests.spans import RecordingTracer, recording_tracer
from tests.unit.entrypoints.serving import channel_to
from tests.unit.service.fakes import INSTANCE, World
from tests.waiting import wait_for

TRACE_ID, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


@pytest.fixture
def traced() -> RecordingTracer:
    return recording_tracer()


@pytest.fixture
def channel(w: World, traced: RecordingTracer) -> Iterator[grpc.Channel]:
    with channel_to(w.bus, tracer=traced.tracer) as opened:
        yield opened


def upload() -> pb.GrantAccessRequest:
    return pb.GrantAccessRequest(instance_id=INSTANCE, bucket="photos", access=pb.ACCESS_UPLOAD)


def rpc_span(traced: RecordingTracer) -> ReadableSpan:
    [span] = [span for span in traced.ended() if span.kind is SpanKind.SERVER]
    return span


def test_a_call_continues_the_callers_trace(channel: grpc.Channel, traced: RecordingTracer) -> None:
    stub = broker_pb2_grpc.AccessBrokerStub(channel)

    stub.GrantAccess(upload(), metadata=(("traceparent", TRACEPARENT),))

    span = rpc_span(traced)
    context = span.get_span_context()
    assert context is not None and f"{context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and f"{span.parent.span_id:016x}" == CALLER_SPAN
    assert span.name == "accessbroker.v1.AccessBroker/GrantAccess"
    assert dict(span.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "accessbroker.v1.AccessBroker",
        "rpc.method": "GrantAccess",
        "rpc.grpc.status_code": grpc.StatusCode.OK.value[0],
    }
    assert span.status.status_code is StatusCode.UNSET


def test_a_callers_mistake_is_not_a_failed_span(
    channel: grpc.Channel, traced: RecordingTracer
) -> None:
    stub = broker_pb2_grpc.AccessBrokerStub(channel)

    refused = refusal(lambda: stub.GetGrant(pb.GetGrantRequest(grant_id="not-a-grant-id")))

    span = rpc_span(traced)
    assert refused.code is grpc.StatusCode.INVALID_ARGUMENT
    assert (span.attributes or {})["rpc.grpc.status_code"] == refused.code.value[0]
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None  # no caller's trace: the call starts one


def test_a_server_failure_is_a_failed_span(
    w: World, channel: grpc.Channel, traced: RecordingTracer
) -> None:
    w.aws.fail("find_instance", AwsUnavailable("AWS DescribeInstances failed: Throttling"))
    stub = broker_pb2_grpc.AccessBrokerStub(channel)

    refused = refusal(lambda: stub.GrantAccess(upload()))

    span = rpc_span(traced)
    assert refused.code is grpc.StatusCode.UNAVAILABLE
    assert (span.attributes or {})["rpc.grpc.status_code"] == refused.code.value[0]
    assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, "UNAVAILABLE")


def test_a_stream_is_one_span_ending_when_the_stream_does(
    channel: grpc.Channel, traced: RecordingTracer
) -> None:
    stub = broker_pb2_grpc.AccessBrokerStub(channel)
    stub.GrantAccess(upload())

    request = pb.WatchAuditEventsRequest(instance_id=INSTANCE, after_event_id=0)
    # grpc-stubs types the call as an iterable only; it is also the call, which cancels.
    stream: Any = stub.WatchAuditEvents(request)
    next(stream)  # the grant's first event
    stream.cancel()

    def streams() -> list[str]:
        return [span.name for span in traced.ended() if span.name.endswith("WatchAuditEvents")]

    assert wait_for(streams, bool, what="the stream's span to end") == [
        "accessbroker.v1.AccessBroker/WatchAuditEvents"
    ]


def test_health_checks_are_not_traced(channel: grpc.Channel, traced: RecordingTracer) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    stub = broker_pb2_grpc.AccessBrokerStub(channel)

    answer = health.Check(health_pb2.HealthCheckRequest(service=""))
    stub.GrantAccess(upload())  # traced, beside it: the tracer works

    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert [span.name for span in traced.ended() if span.kind is SpanKind.SERVER] == [
        "accessbroker.v1.AccessBroker/GrantAccess"
    ]
