"""Small OTLP trace receivers on loopback, over HTTP (protobuf) and gRPC, that keep every span
they are sent, as a collector would receive them."""

import gzip
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage

from tests.waiting import wait_for


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    # "" for a root span.
    parent_id: str
    name: str
    kind: str
    attributes: dict[str, Any]
    # UNSET, OK or ERROR.
    status: str
    service: str


class Spans:
    """What a receiver was sent, span by span; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        received = list(_spans_of(request))
        with self._lock:
            self._spans += received

    def all(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [span for span in self.all() if span.trace_id == trace_id]

    def named(self, name: str) -> list[ReceivedSpan]:
        return [span for span in self.all() if span.name == name]

    def wait_for_span(self, name: str, trace_id: str = "") -> ReceivedSpan:
        """The one span of that name (in that trace, if given), once it has arrived."""

        def found() -> list[ReceivedSpan]:
            spans = self.of_trace(trace_id) if trace_id else self.all()
            return [span for span in spans if span.name == name]

        [span] = wait_for(found, bool, what=f"the span {name} to be exported")
        return span


def _spans_of(request: trace_service_pb2.ExportTraceServiceRequest) -> Iterator[ReceivedSpan]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield ReceivedSpan(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex(),
                    name=span.name,
                    kind=SpanMessage.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                    attributes=_attributes(span.attributes),
                    status=_status_name(span.status.code),
                    service=str(resource.get("service.name", "")),
                )


def _status_name(code: int) -> str:
    return ("UNSET", "OK", "ERROR")[code]


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class OtlpHttpReceiver:
    """POST /v1/traces, as an OpenTelemetry collector's OTLP/HTTP receiver takes it."""

    def __init__(self) -> None:
        self.spans = Spans()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self.spans))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL: an exporter posts to its /v1/traces."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "OtlpHttpReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(spans: Spans) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            spans.add(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows what a failed test printed

    return Handler


class OtlpGrpcReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """opentelemetry.proto.collector.trace.v1.TraceService/Export, in plaintext."""

    def __init__(self) -> None:
        self.spans = Spans()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        # The generated function is untyped.
        add_servicer: Any = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
        add_servicer(self, self._server)
        self._port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def Export(  # noqa: N802 (the RPC's name)
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.spans.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def __enter__(self) -> "OtlpGrpcReceiver":
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop(0).wait()
