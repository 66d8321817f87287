"""A caller whose deadline passes while the broker retries: DEADLINE_EXCEEDED, the grant waits
PENDING with the reason, and the background sweep finishes it once AWS answers again.

AWS is made to throttle by a small HTTP server of this test's own in front of the emulator: it
answers IAM's Throttling to the actions it is told to, and passes everything else through.
"""

import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest

from accessbroker.v1 import broker_pb2 as pb
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED
from tests.e2e.broker_process import BrokerProcess
from tests.rpc import refusal
from tests.waiting import WAIT_SECONDS, wait_for

THROTTLING = b"""<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"""
# The caller's own timeout: long enough for the broker to retry the throttled call a few times,
# and to answer within its margin (a fifth of it) even on a loaded machine.
CALLERS_DEADLINE = 8.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class ThrottlingProxy:
    """Forwards to the emulator, except that the actions in `throttled` get Throttling."""

    def __init__(self, upstream: str) -> None:
        self.throttled: set[str] = set()
        self.refused = 0
        target = urlsplit(upstream)
        host, port = target.hostname or "127.0.0.1", target.port or 80
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
                if action in proxy.throttled:
                    proxy.refused += 1
                    self._answer(400, [("Content-Type", "text/xml")], THROTTLING)
                    return
                upstream = http.client.HTTPConnection(host, port, timeout=30)
                try:
                    # The Host header goes along unchanged: the request is signed for it.
                    upstream.request("POST", self.path, body, dict(self.headers.items()))
                    answer = upstream.getresponse()
                    self._answer(answer.status, answer.getheaders(), answer.read())
                finally:
                    upstream.close()

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "ThrottlingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def proxy(emulator: Emulator) -> Iterator[ThrottlingProxy]:
    with ThrottlingProxy(emulator.endpoint_url) as running:
        yield running


@pytest.fixture
def broker_behind_proxy(
    emulator: Emulator, proxy: ThrottlingProxy, tmp_path: Path
) -> Iterator[BrokerProcess]:
    process = BrokerProcess(
        emulator,
        f"sqlite:///{tmp_path / 'broker.db'}",
        BROKER_AWS_ENDPOINT_URL=proxy.endpoint_url,
        # Far longer than the caller waits: only the caller's deadline can end its call.
        BROKER_AWS_THROTTLING_BUDGET="300",
        BROKER_SWEEP_INTERVAL_SECONDS="1",
    )
    process.start()
    yield process
    process.stop()


def test_a_caller_past_its_deadline_gets_deadline_exceeded_and_the_grant_finishes_later(
    emulator: Emulator,
    proxy: ThrottlingProxy,
    broker_behind_proxy: BrokerProcess,
    buckets: tuple[str, str],
) -> None:
    stub = broker_behind_proxy.stub
    instance_id = emulator.run_instance()
    proxy.throttled = {"CreateRole"}
    request = pb.GrantAccessRequest(
        instance_id=instance_id, bucket=buckets[0], access=pb.ACCESS_UPLOAD, prefix="late/"
    )
    started = time.monotonic()

    refused = refusal(lambda: stub.GrantAccess(request, timeout=CALLERS_DEADLINE))
    answered_after = time.monotonic() - started

    assert refused.code == grpc.StatusCode.DEADLINE_EXCEEDED
    # The broker's own answer, sent before the deadline, not merely the client giving up (grpc
    # then says "Deadline Exceeded"): this, not a stopwatch, proves the deadline was honoured.
    assert "the caller's deadline passed during AWS CreateRole" in refused.message
    # The call ended at the caller's deadline, not at the end of the throttling budget (300 s),
    # the only other end it could have; generous, as a loaded client is slow to see the answer.
    assert answered_after < CALLERS_DEADLINE + WAIT_SECONDS
    assert proxy.refused >= 2, "the broker was retrying the throttled call"
    [waiting] = stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id), timeout=10).grants
    assert waiting.state == pb.GRANT_STATE_PENDING
    assert "deadline passed during AWS CreateRole" in waiting.failure_reason

    proxy.throttled = set()
    # The sweep (every second here) retries the grant; its retry of CreateRole now goes through.
    finished = wait_for(
        lambda: stub.GetGrant(pb.GetGrantRequest(grant_id=waiting.grant_id), timeout=10),
        lambda grant: grant.state != pb.GRANT_STATE_PENDING,
        what="the background sweep finishing the grant once AWS stopped throttling",
    )

    assert finished.state == pb.GRANT_STATE_ACTIVE
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "late/x") == ALLOWED
    events = stub.ListAuditEvents(pb.ListAuditEventsRequest(grant_id=waiting.grant_id)).events
    assert [(e.action, e.actor) for e in events] == [
        ("grant.requested", "anonymous"),
        ("grant.retry_later", "anonymous"),
        ("grant.active", "system"),
    ]
