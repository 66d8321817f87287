"""A span per RPC, when tracing is on (broker.adapters.tracing).

The caller's trace continues here: a W3C `traceparent` (and `tracestate`) in the call's metadata
makes the RPC's span its child. The span is named and described as OpenTelemetry's gRPC
conventions say (`accessbroker.v1.AccessBroker/GrantAccess`, rpc.system, rpc.service,
rpc.method, rpc.grpc.status_code) and marked failed only for the codes that say the server
failed, not for a caller's mistake. Health checks and reflection are not traced: a load
balancer's probes would bury the traces that matter.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import grpc
from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from broker.entrypoints.grpc.interceptors import Stream, Unary, WrappingInterceptor
from broker.entrypoints.logs import note

# The codes that mark a server span failed (OpenTelemetry's semantic conventions for gRPC).
SERVER_FAILURES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class TracingInterceptor(WrappingInterceptor):
    def __init__(self, tracer: Tracer, untraced_services: frozenset[str]) -> None:
        self._tracer, self._untraced = tracer, untraced_services

    def unary(self, behavior: Unary, method: str) -> Unary:
        if _service(method) in self._untraced:
            return behavior

        def traced(request: Any, context: grpc.ServicerContext) -> Any:
            with self._span(context, method):
                return behavior(request, context)

        return traced

    def stream(self, behavior: Stream, method: str) -> Stream:
        if _service(method) in self._untraced:
            return behavior

        def traced(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with self._span(context, method):
                yield from behavior(request, context)

        return traced

    @contextmanager
    def _span(self, context: grpc.ServicerContext, method: str) -> Iterator[Span]:
        caller = {k: v for k, v in context.invocation_metadata() if not k.endswith("-bin")}
        with self._tracer.start_as_current_span(
            method.lstrip("/"),
            context=propagate.extract(caller),
            kind=SpanKind.SERVER,
            attributes=_attributes(method),
            # An abort is an exception too: the code, set below, says whether the server failed.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            ids = span.get_span_context()
            note(trace_id=f"{ids.trace_id:032x}", span_id=f"{ids.span_id:016x}")
            try:
                yield span
            finally:
                _describe_end(span, context)


def _describe_end(span: Span, context: grpc.ServicerContext) -> None:
    # abort() sets the code, success leaves it unset. (grpc-stubs lacks code(), grpc has it.)
    code: grpc.StatusCode = cast(Any, context).code() or grpc.StatusCode.OK
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in SERVER_FAILURES:
        span.set_status(Status(StatusCode.ERROR, code.name))


def _service(method: str) -> str:
    return method.lstrip("/").rpartition("/")[0]


def _attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
