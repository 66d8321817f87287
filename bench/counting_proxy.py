"""An HTTP proxy in front of the AWS emulator that counts the calls going through it.

Every request is forwarded unchanged (bytes, headers and signature), over one keep-alive
connection to the emulator per client connection. The proxy remembers each call's service,
action (the query protocol's `Action=`; an S3 REST call as its HTTP method) and status, in
order, before it answers: once a caller has its answer, the call is counted.

`GET /__bench__/calls?since=N` (answered by the proxy itself, never forwarded) returns
`{"total": T, "calls": [[service, action, status], ...]}`, the calls from the N-th on.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from tests.faults.aws_errors import query_params, service_of

CONTROL_PATH = "/__bench__/calls"
# Not forwarded: they describe one hop, not the request.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})

Call = tuple[str, str, int]  # service, action, HTTP status


class CountingProxy:
    """Listens on 127.0.0.1 (a free port) in this process; use as a context manager."""

    def __init__(self, upstream_url: str) -> None:
        upstream = urlsplit(upstream_url)
        self.upstream_host, self.upstream_port = upstream.hostname or "", upstream.port or 80
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, name="counting-proxy")

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def calls(self, since: int = 0) -> tuple[int, list[Call]]:
        """How many calls so far, and those from the `since`-th on."""
        with self._lock:
            return len(self._calls), self._calls[since:]

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)


def _handler_for(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
        upstream: http.client.HTTPConnection | None = None

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith(CONTROL_PATH):
                self._control()
            else:
                self._forward()

        def do_POST(self) -> None:
            self._forward()

        def do_PUT(self) -> None:
            self._forward()

        def do_DELETE(self) -> None:
            self._forward()

        def do_HEAD(self) -> None:
            self._forward()

        def _control(self) -> None:
            since = parse_qs(urlsplit(self.path).query).get("since", ["0"])[0]
            total, calls = proxy.calls(int(since))
            self._answer(200, [("Content-Type", "application/json")], _json(total, calls))

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            params = query_params(self.path, self.headers.get("Content-Type", ""), body)
            service = service_of(self.headers.get("Authorization", ""))
            action = params.get("Action") or self.command
            status, reason, headers, answer = self._exchange(body)
            proxy.record((service, action, status))
            kept = [(n, v) for n, v in headers if n.lower() not in _HOP_BY_HOP]
            self._answer(status, kept, answer, reason)

        def _exchange(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
            # One retry on a fresh connection: the emulator may have closed an idle one.
            for attempt in (1, 2):
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(
                        proxy.upstream_host, proxy.upstream_port, timeout=120
                    )
                try:
                    return self._send(self.upstream, body)
                except (http.client.HTTPException, OSError):
                    self.upstream.close()
                    self.upstream = None
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

        def _send(
            self, connection: http.client.HTTPConnection, body: bytes
        ) -> tuple[int, str, list[tuple[str, str]], bytes]:
            # The Host header is forwarded as sent: it is part of the SigV4 signature.
            connection.putrequest(
                self.command, self.path, skip_host=True, skip_accept_encoding=True
            )
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            answer = response.read()
            return response.status, response.reason, response.getheaders(), answer

        def _answer(
            self, status: int, headers: list[tuple[str, str]], body: bytes, reason: str = ""
        ) -> None:
            self.send_response_only(status, reason or None)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()

        def finish(self) -> None:
            super().finish()
            if self.upstream is not None:
                self.upstream.close()

    return Handler


def _json(total: int, calls: list[Call]) -> bytes:
    return json.dumps({"total": total, "calls": calls}).encode()
