"""Tracing is configured by the standard OTEL_* variables alone: off without an endpoint, over
http/protobuf unless the protocol says grpc, refused at start for a protocol it cannot speak."""

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from broker.adapters.tracing import span_exporter, tracer_provider, tracing_from
from broker.settings import ConfigurationError

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_SERVICE_NAME": "broker"},
        {**ENDPOINT, "OTEL_SDK_DISABLED": "true"},
    ],
)
def test_tracing_is_off_without_an_endpoint_or_when_disabled(environ: dict[str, str]) -> None:
    tracing = tracing_from(environ, "1.0")

    assert not tracing.enabled
    with tracing.tracer.start_as_current_span("work") as span:
        assert not span.is_recording()


@pytest.mark.parametrize(
    "environ",
    [ENDPOINT, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}],
)
def test_an_endpoint_turns_tracing_on(environ: dict[str, str]) -> None:
    tracing = tracing_from(environ, "1.0")
    try:
        assert tracing.enabled
        # Never ended, so never exported: there is no collector to send it to.
        assert tracing.tracer.start_span("work").is_recording()
    finally:
        tracing.close()


@pytest.mark.parametrize(
    ("environ", "exporter"),
    [
        (ENDPOINT, HttpSpanExporter),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, HttpSpanExporter),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GrpcSpanExporter),
        # The traces' own variable wins over the general one.
        (
            {
                **ENDPOINT,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            HttpSpanExporter,
        ),
    ],
)
def test_the_protocol_picks_the_exporter(environ: dict[str, str], exporter: type) -> None:
    chosen = span_exporter(environ)

    assert type(chosen) is exporter
    chosen.shutdown()


def test_a_protocol_the_broker_cannot_speak_is_refused_naming_the_variable() -> None:
    environ = {**ENDPOINT, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}

    with pytest.raises(ConfigurationError) as refused:
        tracing_from(environ, "1.0")

    assert str(refused.value) == (
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' is not supported; "
        "use http/protobuf or grpc"
    )


@pytest.mark.parametrize(
    ("environ", "service"),
    [({}, "accessbroker"), ({"OTEL_SERVICE_NAME": "broker-eu"}, "broker-eu")],
)
def test_spans_name_the_service_and_its_version(environ: dict[str, str], service: str) -> None:
    exporter = InMemorySpanExporter()
    provider = tracer_provider(environ, "1.2.3", SimpleSpanProcessor(exporter))

    with provider.get_tracer("tests").start_as_current_span("work"):
        pass

    [span] = exporter.get_finished_spans()
    assert span.resource.attributes["service.name"] == service
    assert span.resource.attributes["service.version"] == "1.2.3"


def test_the_sampler_is_the_one_otel_traces_sampler_names(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    provider = tracer_provider({}, "1.0", SimpleSpanProcessor(exporter))

    with provider.get_tracer("tests").start_as_current_span("work") as span:
        assert not span.is_recording()

    assert exporter.get_finished_spans() == ()
