"""SIGTERM: new calls are refused, calls in flight finish within the grace, the process exits 0."""

import http.client
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest

from accessbroker.v1 import broker_pb2 as pb
from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.sandbox import Emulator
from broker.service.ports import GrantFilter
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_associations
from tests.rpc import refusal

SLOW_ACTION = b"Action=AssociateIamInstanceProfile"


class SlowAws:
    """An HTTP forwarder to the emulator that holds one AWS action back for `delay` seconds.

    `held` is set when such a request arrives, so a test can act while it is in flight.
    """

    def __init__(self, upstream: str, delay: float) -> None:
        self.delay, self.held = delay, threading.Event()
        target = urlsplit(upstream)
        forwarder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if SLOW_ACTION in body:
                    forwarder.held.set()
                    time.sleep(forwarder.delay)
                upstream_call = http.client.HTTPConnection(target.netloc, timeout=30)
                # Headers go on unchanged (Host too): the request's signature covers them.
                upstream_call.request("POST", self.path, body, dict(self.headers.items()))
                reply = upstream_call.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                for name, value in reply.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream_call.close()

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def slow_aws(emulator: Emulator) -> Iterator[SlowAws]:
    forwarder = SlowAws(emulator.endpoint_url, delay=3.0)
    yield forwarder
    forwarder.close()


def _broker(emulator: Emulator, tmp_path: Path, slow_aws: SlowAws, grace: float) -> BrokerProcess:
    return BrokerProcess(
        emulator,
        f"sqlite:///{tmp_path / 'broker.db'}",
        BROKER_AWS_ENDPOINT_URL=slow_aws.url,
        BROKER_SHUTDOWN_GRACE=str(grace),
    )


def _grant_in_flight(
    process: BrokerProcess, pool: ThreadPoolExecutor, instance_id: str, bucket: str
) -> "Future[pb.GrantAccessResponse]":
    request = pb.GrantAccessRequest(instance_id=instance_id, bucket=bucket, access=pb.ACCESS_UPLOAD)
    return pool.submit(process.stub.GrantAccess, request, timeout=60)


def _terminate(process: BrokerProcess) -> float:
    """Sends SIGTERM; returns when it was sent (time.monotonic())."""
    assert process.process is not None
    process.process.send_signal(signal.SIGTERM)
    return time.monotonic()


def _wait_exit(process: BrokerProcess, timeout: float) -> int:
    assert process.process is not None
    return process.process.wait(timeout=timeout)


def test_sigterm_lets_the_call_in_flight_finish_refuses_new_ones_and_exits_0(
    emulator: Emulator,
    tmp_path: Path,
    slow_aws: SlowAws,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    grace = 15.0
    process = _broker(emulator, tmp_path, slow_aws, grace)
    process.start()
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = _grant_in_flight(process, pool, instance_id, buckets[0])
        assert slow_aws.held.wait(30), "the grant never reached AssociateIamInstanceProfile"
        signalled = _terminate(process)
        time.sleep(0.5)  # the server begins stopping as soon as the signal is handled
        late = refusal(lambda: process.stub.ListGrants(pb.ListGrantsRequest(), timeout=5))
        code = _wait_exit(process, timeout=grace + 10)
        exited_after = time.monotonic() - signalled
        finished = in_flight.result(timeout=5)

    assert late.code == grpc.StatusCode.UNAVAILABLE
    assert finished.grant.state == pb.GRANT_STATE_ACTIVE
    assert code == 0, "".join(process.output)
    assert exited_after < grace
    assert len(aws_associations(emulator, instance_id)) == 1


def test_a_call_longer_than_the_grace_is_cut_off_and_finished_after_restart(
    emulator: Emulator,
    tmp_path: Path,
    slow_aws: SlowAws,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    grace, slow_aws.delay = 0.5, 6.0
    process = _broker(emulator, tmp_path, slow_aws, grace)
    process.start()
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = _grant_in_flight(process, pool, instance_id, buckets[0])
        assert slow_aws.held.wait(30), "the grant never reached AssociateIamInstanceProfile"
        signalled = _terminate(process)
        code = _wait_exit(process, timeout=30)
        exited_after = time.monotonic() - signalled
        cut_off = refusal(lambda: in_flight.result(timeout=5))
    left_behind = _grant_states(tmp_path, instance_id)

    slow_aws.delay = 0.0
    process.start()  # the sweep at start finishes what the cut-off call left pending
    try:
        grants = process.stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id)).grants
        deadline = time.monotonic() + 30
        while grants[0].state == pb.GRANT_STATE_PENDING and time.monotonic() < deadline:
            time.sleep(0.2)
            grants = process.stub.ListGrants(pb.ListGrantsRequest(instance_id=instance_id)).grants
    finally:
        assert process.stop() == 0

    assert code == 0, "".join(process.output)
    assert exited_after < slow_aws_delay_bound(grace)
    assert cut_off.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert left_behind == ["pending"]
    assert [g.state for g in grants] == [pb.GRANT_STATE_ACTIVE]
    assert len(aws_associations(emulator, instance_id)) == 1


def slow_aws_delay_bound(grace: float) -> float:
    """The process exits after the grace and its own clean-up, well before the held call ends."""
    return grace + 4.0


def _grant_states(tmp_path: Path, instance_id: str) -> list[str]:
    """The instance's grants as the stopped broker left them in its database."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'broker.db'}")
    try:
        with sql_unit_of_work_factory(engine)() as uow:
            page = uow.grants.list(GrantFilter(instance_id=instance_id), after=None, limit=10)
    finally:
        engine.dispose()
    return [g.state.value for g in page.items]


def test_open_audit_streams_end_on_shutdown(
    emulator: Emulator, tmp_path: Path, slow_aws: SlowAws
) -> None:
    grace = 15.0
    process = _broker(emulator, tmp_path, slow_aws, grace)
    process.start()
    stream = process.stub.WatchAuditEvents(pb.WatchAuditEventsRequest(after_event_id=0))
    with ThreadPoolExecutor(max_workers=1) as pool:
        drained = pool.submit(lambda: [event.event_id for event in stream])
        time.sleep(1.0)  # the stream is open and caught up
        signalled = _terminate(process)
        code = _wait_exit(process, timeout=grace + 10)
        exited_after = time.monotonic() - signalled
        try:
            drained.result(timeout=5)
            ended = grpc.StatusCode.OK
        except grpc.RpcError:
            ended = stream.code()

    assert code == 0, "".join(process.output)
    # An endless stream must not hold the shutdown for the whole grace.
    assert exited_after < 5.0
    assert ended in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
