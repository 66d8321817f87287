"""A tracer whose spans are kept in memory as they end, for tests of what the adapters trace."""

from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from broker.adapters.tracing import tracer_provider


@dataclass(frozen=True)
class RecordingTracer:
    tracer: Tracer
    exporter: InMemorySpanExporter

    def ended(self) -> list[ReadableSpan]:
        """The spans ended so far, in the order they ended."""
        return list(self.exporter.get_finished_spans())


def recording_tracer() -> RecordingTracer:
    exporter = InMemorySpanExporter()
    provider = tracer_provider({}, "test", SimpleSpanProcessor(exporter))
    return RecordingTracer(provider.get_tracer("tests"), exporter)
