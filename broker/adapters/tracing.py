"""Traces, exported over OTLP when the standard OTEL_* variables ask for them, and off otherwise.

Tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set
(and OTEL_SDK_DISABLED is not "true"). OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL picks http/protobuf
(the default) or grpc; OTEL_SERVICE_NAME names the service (default accessbroker). The
OpenTelemetry SDK reads everything else itself: OTEL_TRACES_SAMPLER and its argument, the
exporter's headers, timeout and certificates, the batch processor's delays.

The provider is the broker's own rather than the process-wide one, so that each Runtime (the
tests build several in one process) traces to where its settings say.
"""

from collections.abc import Mapping

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import NoOpTracerProvider, Tracer

from broker.settings import ConfigurationError

DEFAULT_SERVICE_NAME = "accessbroker"
PROTOCOLS = ("http/protobuf", "grpc")
# The instrumentation scope every broker span is made under.
SCOPE = "accessbroker"


class Tracing:
    """The broker's tracer, and the provider behind it (None when tracing is off)."""

    def __init__(self, provider: TracerProvider | None) -> None:
        self._provider = provider
        self.tracer: Tracer = (provider or NoOpTracerProvider()).get_tracer(SCOPE)

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    def close(self) -> None:
        """Sends the spans still waiting in the batch, then stops exporting."""
        if self._provider is not None:
            self._provider.shutdown()


def tracing_from(environ: Mapping[str, str], version: str) -> Tracing:
    """Tracing as `environ` (the OTEL_* variables) configures it. ConfigurationError when it
    names a protocol the broker cannot export with."""
    if not _wanted(environ):
        return Tracing(None)
    return Tracing(tracer_provider(environ, version, BatchSpanProcessor(span_exporter(environ))))


def tracer_provider(
    environ: Mapping[str, str], version: str, processor: SpanProcessor
) -> TracerProvider:
    """A provider for the broker's resource that hands every span it ends to `processor`; its
    sampler is the one OTEL_TRACES_SAMPLER names (the SDK reads it), parent-based by default."""
    name = environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: name, SERVICE_VERSION: version})
    )
    provider.add_span_processor(processor)
    return provider


def _wanted(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def span_exporter(environ: Mapping[str, str]) -> SpanExporter:
    """The exporter the protocol variables name (http/protobuf unless they say otherwise)."""
    # Each exporter reads its endpoint, headers and certificates from the environment itself.
    variable = next(
        (
            name
            for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
            if environ.get(name)
        ),
        "",
    )
    protocol = environ[variable].strip() if variable else PROTOCOLS[0]
    if protocol == "grpc":
        return GrpcSpanExporter()
    if protocol == "http/protobuf":
        return HttpSpanExporter()
    supported = " or ".join(PROTOCOLS)
    raise ConfigurationError(f"{variable}: {protocol!r} is not supported; use {supported}")
