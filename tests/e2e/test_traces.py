"""Traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, one GrantAccess is one trace, exported to an
OTLP receiver: the RPC's span (continuing the caller's trace when it sent a traceparent), the
convergence's span under it, and under those each AWS call and database transaction."""

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from accessbroker import Access, BrokerClient
from accessbroker.v1 import broker_pb2 as pb
from broker.sandbox import Emulator
from tests.e2e.broker_process import BrokerProcess
from tests.otlp import OtlpGrpcReceiver, OtlpHttpReceiver, ReceivedSpan, Spans
from tests.waiting import wait_for

GRANT_SPAN = "accessbroker.v1.AccessBroker/GrantAccess"
CONVERGENCE_SPAN = "accessbroker.converge"
# Spans are sent in batches; a short delay keeps the tests quick.
EXPORT_EVERY_MS = "100"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpHttpReceiver]:
    with OtlpHttpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def broker(
    emulator: Emulator, receiver: OtlpHttpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerProcess]:
    database = tmp_path_factory.mktemp("traces") / "broker.db"
    process = BrokerProcess(
        emulator,
        f"sqlite:///{database}",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY=EXPORT_EVERY_MS,
        BROKER_LOG_FORMAT="json",
    )
    process.start()
    yield process
    process.stop()


def grant_request(instance_id: str, bucket: str) -> pb.GrantAccessRequest:
    return pb.GrantAccessRequest(instance_id=instance_id, bucket=bucket, access=pb.ACCESS_UPLOAD)


def traceparent() -> tuple[str, str, str]:
    """A caller's trace id, span id, and the W3C traceparent that names them (sampled)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def traced_grant(
    broker: BrokerProcess, spans: Spans, instance_id: str, bucket: str
) -> tuple[list[ReceivedSpan], str]:
    """The spans of a grant made in a trace of the caller's (once the RPC's, the last to end,
    has arrived with all it holds), and the caller's span id."""
    trace_id, caller_span, header = traceparent()
    metadata = (("traceparent", header),)
    broker.stub.GrantAccess(grant_request(instance_id, bucket), metadata=metadata, timeout=60)
    spans.wait_for_span(GRANT_SPAN, trace_id)
    return spans.of_trace(trace_id), caller_span


def under(span: ReceivedSpan, trace: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [child for child in trace if child.parent_id == span.span_id]


def test_a_grant_is_one_trace_continuing_the_callers(
    broker: BrokerProcess, receiver: OtlpHttpReceiver, instance_id: str, buckets: tuple[str, str]
) -> None:
    trace, caller_span = traced_grant(broker, receiver.spans, instance_id, buckets[0])

    [rpc] = [span for span in trace if span.name == GRANT_SPAN]
    assert (rpc.parent_id, rpc.kind, rpc.service) == (caller_span, "SERVER", "accessbroker")
    assert rpc.attributes == {
        "rpc.system": "grpc",
        "rpc.service": "accessbroker.v1.AccessBroker",
        "rpc.method": "GrantAccess",
        "rpc.grpc.status_code": 0,
    }
    [convergence] = [span for span in under(rpc, trace) if span.name == CONVERGENCE_SPAN]
    assert convergence.attributes == {
        "accessbroker.instance_id": instance_id,
        "accessbroker.region": "us-east-1",
        "accessbroker.outcome": "converged",
    }
    made = {span.name: span for span in under(convergence, trace)}
    assert {"iam.CreateRole", "iam.PutRolePolicy", "ec2.AssociateIamInstanceProfile"} <= set(made)
    assert made["iam.PutRolePolicy"].kind == "CLIENT"
    assert made["iam.PutRolePolicy"].attributes == {
        "rpc.system": "aws-api",
        "rpc.service": "iam",
        "rpc.method": "PutRolePolicy",
        "aws.attempts": 1,
        "aws.retries": 0,
        "aws.outcome": "success",
    }
    assert "db.transaction" in made  # the convergence records what it did


def test_every_span_of_the_grant_descends_from_the_rpcs(
    broker: BrokerProcess, receiver: OtlpHttpReceiver, instance_id: str, buckets: tuple[str, str]
) -> None:
    trace, caller_span = traced_grant(broker, receiver.spans, instance_id, buckets[0])

    by_id = {span.span_id: span for span in trace}
    for span in trace:
        ancestors = [span]
        while ancestors[-1].parent_id in by_id:
            ancestors.append(by_id[ancestors[-1].parent_id])
        assert (ancestors[-1].name, ancestors[-1].parent_id) == (GRANT_SPAN, caller_span)
    transactions = [span for span in trace if span.name == "db.transaction"]
    assert transactions and all(span.attributes["db.system"] == "sqlite" for span in transactions)
    assert any(span.attributes.get("db.committed") for span in transactions)


def test_without_a_callers_trace_the_rpc_starts_one(
    broker: BrokerProcess, receiver: OtlpHttpReceiver, instance_id: str, buckets: tuple[str, str]
) -> None:
    answer = broker.stub.GrantAccess(grant_request(instance_id, buckets[1]), timeout=60)

    def its_span() -> list[ReceivedSpan]:
        return [
            span
            for span in receiver.spans.named(GRANT_SPAN)
            if any(
                child.attributes.get("accessbroker.instance_id") == instance_id
                for child in receiver.spans.of_trace(span.trace_id)
            )
        ]

    [rpc] = wait_for(its_span, bool, what="the span of the untraced call")
    assert rpc.parent_id == ""
    assert answer.grant.state == pb.GRANT_STATE_ACTIVE


def test_the_sdk_carries_the_callers_trace(
    broker: BrokerProcess, receiver: OtlpHttpReceiver, instance_id: str, buckets: tuple[str, str]
) -> None:
    caller = TracerProvider().get_tracer("a-caller")

    with BrokerClient(broker.address) as client, caller.start_as_current_span("deploy") as span:
        client.grant(instance_id, buckets[0], Access.READ)
        ids = span.get_span_context()

    rpc = receiver.spans.wait_for_span(GRANT_SPAN, f"{ids.trace_id:032x}")
    assert rpc.parent_id == f"{ids.span_id:016x}"


def test_log_lines_name_the_calls_trace(
    broker: BrokerProcess, receiver: OtlpHttpReceiver, instance_id: str, buckets: tuple[str, str]
) -> None:
    trace_id, _, header = traceparent()
    metadata = (("traceparent", header), ("x-request-id", "req-traced-0001"))

    broker.stub.GrantAccess(grant_request(instance_id, buckets[0]), metadata=metadata, timeout=60)

    rpc = receiver.spans.wait_for_span(GRANT_SPAN, trace_id)

    def access_lines() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in list(broker.output) if line.startswith("{")]
        return [line for line in lines if line.get("request_id") == "req-traced-0001"]

    [access] = wait_for(access_lines, bool, what="the call's access-log line")
    assert (access["trace_id"], access["span_id"]) == (trace_id, rpc.span_id)


def test_traces_go_over_grpc_when_the_protocol_says_so(
    emulator: Emulator, instance_id: str, buckets: tuple[str, str], tmp_path: Path
) -> None:
    trace_id, _, header = traceparent()
    with OtlpGrpcReceiver() as collector:
        process = BrokerProcess(
            emulator,
            f"sqlite:///{tmp_path / 'broker.db'}",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_BSP_SCHEDULE_DELAY=EXPORT_EVERY_MS,
            OTEL_SERVICE_NAME="broker-under-test",
        )
        process.start()
        try:
            process.stub.GrantAccess(
                grant_request(instance_id, buckets[0]),
                metadata=(("traceparent", header),),
                timeout=60,
            )
            rpc = collector.spans.wait_for_span(GRANT_SPAN, trace_id)
        finally:
            process.stop()

    assert rpc.service == "broker-under-test"
    assert collector.spans.named(CONVERGENCE_SPAN)
