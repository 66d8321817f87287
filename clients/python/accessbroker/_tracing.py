"""The caller's trace, carried to the broker: when the caller has OpenTelemetry installed, each
call's metadata gets the current context (a W3C `traceparent`, by default), so the broker's
spans join the caller's trace. Without OpenTelemetry, calls carry nothing more."""

try:
    from opentelemetry import propagate
except ImportError:  # the caller does not use OpenTelemetry
    propagate = None  # type: ignore[assignment]

Metadata = tuple[tuple[str, str], ...]


def with_trace_context(metadata: Metadata) -> Metadata:
    """`metadata` and the current trace context, as the caller's propagators write it."""
    if propagate is None:
        return metadata
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return (*metadata, *carrier.items())
