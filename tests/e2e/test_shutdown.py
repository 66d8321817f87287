"""SIGTERM: new calls are refused, calls in flight finish within the grace, the process exits 0."""

import http.client
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest

from accessbroker.client import FEED_START_METADATA
from accessbroker.v1 import broker_pb2 as pb
from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.sandbox import Emulator
from broker.service.ports import GrantFilter
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_associations
from tests.rpc import refusal
from tests.waiting import WAIT_SECONDS, NeverHappened, wait_for

HELD_ACTION = b"Action=AssociateIamInstanceProfile"
# However long the grace a test gives, the broker exits within it once its calls are done, so a
# long grace costs nothing when the code is right and makes "before the grace ran out" a wide
# margin rather than a race with the machine's load.
LONG_GRACE = 30.0
_HOP_BY_HOP = ("content-length", "transfer-encoding", "connection")
# A held call is let go after this even if the test never releases it (it failed first).
HOLD_LIMIT_SECONDS = 2 * WAIT_SECONDS


class HeldAws:
    """An HTTP forwarder to the emulator that holds one AWS action back until `release` is set.

    `held` is set when such a request arrives, so a test can act while the broker's call is in
    flight for as long as it needs, not for a guessed number of seconds; `passed` is set once a
    held request has gone on to the emulator and been answered.
    """

    def __init__(self, upstream: str) -> None:
        self.held, self.release = threading.Event(), threading.Event()
        self.passed = threading.Event()
        target = urlsplit(upstream)
        forwarder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                holding = HELD_ACTION in body and not forwarder.release.is_set()
                if holding:
                    forwarder.held.set()
                    forwarder.release.wait(HOLD_LIMIT_SECONDS)
                upstream_call = http.client.HTTPConnection(target.netloc, timeout=30)
                # Headers go on unchanged (Host too): the request's signature covers them.
                upstream_call.request("POST", self.path, body, dict(self.headers.items()))
                reply = upstream_call.getresponse()
                data = reply.read()
                upstream_call.close()
                if holding:
                    forwarder.passed.set()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.getheaders():
                        if name.lower() not in _HOP_BY_HOP:
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the broker that asked was stopped meanwhile: no one to answer

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def held_aws(emulator: Emulator) -> Iterator[HeldAws]:
    forwarder = HeldAws(emulator.endpoint_url)
    yield forwarder
    forwarder.close()


def _broker(emulator: Emulator, tmp_path: Path, held_aws: HeldAws, grace: float) -> BrokerProcess:
    return BrokerProcess(
        emulator,
        f"sqlite:///{tmp_path / 'broker.db'}",
        BROKER_AWS_ENDPOINT_URL=held_aws.url,
        BROKER_SHUTDOWN_GRACE=str(grace),
    )


def _grant_in_flight(
    process: BrokerProcess, pool: ThreadPoolExecutor, instance_id: str, bucket: str
) -> "Future[pb.GrantAccessResponse]":
    request = pb.GrantAccessRequest(instance_id=instance_id, bucket=bucket, access=pb.ACCESS_UPLOAD)
    return pool.submit(process.stub.GrantAccess, request, timeout=2 * WAIT_SECONDS)


def _hold_a_call(held_aws: HeldAws) -> None:
    if not held_aws.held.wait(WAIT_SECONDS):
        raise NeverHappened("the grant reaching AssociateIamInstanceProfile, to be held there")


def _terminate(process: BrokerProcess) -> float:
    """Sends SIGTERM; returns when it was sent (time.monotonic())."""
    assert process.process is not None
    process.process.send_signal(signal.SIGTERM)
    return time.monotonic()


def _wait_exit(process: BrokerProcess, timeout: float) -> int:
    assert process.process is not None
    try:
        return process.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NeverHappened(
            f"the broker exiting after SIGTERM: not within {timeout:g}s; its output:\n"
            + "".join(process.output)
        ) from None


# How a new call fares before the server begins stopping, and as it does.
TRANSITIONAL = (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED)


def _new_call(process: BrokerProcess) -> grpc.StatusCode:
    """How a new call fares: OK, or the status it was refused with."""
    try:
        process.stub.ListGrants(pb.ListGrantsRequest(), timeout=5)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_sigterm_lets_the_call_in_flight_finish_refuses_new_ones_and_exits_0(
    emulator: Emulator,
    tmp_path: Path,
    held_aws: HeldAws,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    grace = LONG_GRACE
    process = _broker(emulator, tmp_path, held_aws, grace)
    process.start()
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = _grant_in_flight(process, pool, instance_id, buckets[0])
        _hold_a_call(held_aws)
        signalled = _terminate(process)
        # The server begins stopping once the signal is handled; the held call keeps it alive
        # meanwhile, so what refuses the new call is the stopping server, not a dead process.
        # A call that lands just as the shutdown begins may come back CANCELLED; the refusal
        # every call after it gets is the one that matters.
        late = wait_for(
            lambda: _new_call(process),
            lambda code: code not in TRANSITIONAL,
            what="a new call being refused after SIGTERM",
        )
        refused_while_in_flight = not in_flight.done()
        held_aws.release.set()
        code = _wait_exit(process, timeout=grace + WAIT_SECONDS)
        exited_after = time.monotonic() - signalled
        finished = in_flight.result(timeout=WAIT_SECONDS)

    assert late == grpc.StatusCode.UNAVAILABLE
    assert refused_while_in_flight, "the new call was refused only after the call in flight ended"
    assert finished.grant.state == pb.GRANT_STATE_ACTIVE
    assert code == 0, "".join(process.output)
    # Once the call in flight is done, the broker exits without waiting out the rest of the grace.
    assert exited_after < grace
    assert len(aws_associations(emulator, instance_id)) == 1


def test_a_call_longer_than_the_grace_is_cut_off_and_finished_after_restart(
    emulator: Emulator,
    tmp_path: Path,
    held_aws: HeldAws,
    instance_id: str,
    buckets: tuple[str, str],
) -> None:
    grace = 0.5
    process = _broker(emulator, tmp_path, held_aws, grace)
    process.start()
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = _grant_in_flight(process, pool, instance_id, buckets[0])
        _hold_a_call(held_aws)
        signalled = _terminate(process)
        # The held call is released only after this, so it is longer than the grace whatever
        # the machine's speed: the broker must exit with it still in flight.
        code = _wait_exit(process, timeout=WAIT_SECONDS)
        exited_after = time.monotonic() - signalled
        cut_off = refusal(lambda: in_flight.result(timeout=WAIT_SECONDS))
    left_behind = _grant_states(tmp_path, instance_id)

    # AWS then carries out the association the dead broker asked for and never heard back about;
    # waiting for it to land before the restart keeps the restart from racing with it.
    held_aws.release.set()
    if not held_aws.passed.wait(WAIT_SECONDS):
        raise NeverHappened("the held AssociateIamInstanceProfile reaching the emulator")
    process.start()  # the sweep at start finishes what the cut-off call left pending
    try:
        grants = wait_for(
            lambda: _grants_of(process, instance_id),
            lambda found: pb.GrantState.Name(pb.GRANT_STATE_PENDING) not in found,
            what="the sweep at start finishing the grant the cut-off call left pending",
        )
    finally:
        assert process.stop() == 0

    assert code == 0, "".join(process.output)
    # The call in flight had the whole grace to finish before it was cut off.
    assert exited_after >= grace
    assert cut_off.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert left_behind == ["pending"]
    assert grants == [pb.GrantState.Name(pb.GRANT_STATE_ACTIVE)]
    assert len(aws_associations(emulator, instance_id)) == 1


def _grants_of(process: BrokerProcess, instance_id: str) -> list[str]:
    """The states of the instance's grants, as the running broker reports them."""
    request = pb.ListGrantsRequest(instance_id=instance_id)
    grants = process.stub.ListGrants(request, timeout=10).grants
    return [pb.GrantState.Name(g.state) for g in grants]


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
    emulator: Emulator, tmp_path: Path, held_aws: HeldAws
) -> None:
    grace = LONG_GRACE
    process = _broker(emulator, tmp_path, held_aws, grace)
    process.start()
    stream = process.stub.WatchAuditEvents(pb.WatchAuditEventsRequest(after_event_id=0))
    opened, headers = threading.Event(), dict[str, str | bytes]()

    def drain() -> list[int]:
        # The server sends its headers once the stream holds its slot and knows where it
        # starts: from then on the stream is open on the server, following the trail.
        headers.update(stream.initial_metadata() or ())
        opened.set()
        return [event.event_id for event in stream]

    with ThreadPoolExecutor(max_workers=1) as pool:
        drained = pool.submit(drain)
        if not opened.wait(WAIT_SECONDS):
            raise NeverHappened("the audit stream opening (its headers from the server)")
        assert FEED_START_METADATA in headers, f"the stream was refused: {headers}"
        signalled = _terminate(process)
        code = _wait_exit(process, timeout=grace + WAIT_SECONDS)
        exited_after = time.monotonic() - signalled
        try:
            drained.result(timeout=WAIT_SECONDS)
            ended = grpc.StatusCode.OK
        except grpc.RpcError:
            ended = stream.code()

    assert code == 0, "".join(process.output)
    # An endless stream must not hold the shutdown for the whole grace: had it, the broker
    # would exit only once the grace ran out, which is later than this.
    assert exited_after < grace
    assert ended in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
