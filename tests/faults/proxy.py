"""An HTTP proxy that forwards AWS calls to the emulator and, by seeded chance, breaks them.

Per AWS action (the query protocol's `Action=`), a request is either forwarded unchanged, bytes
and signature included, or met with one fault:

- `throttle`: IAM's `Throttling` (HTTP 400) or EC2's `RequestLimitExceeded` (HTTP 503);
- `server_error`: HTTP 500 or 503 with the service's internal-error code;
- `drop_request`: the connection closes and the request never reaches AWS;
- `drop_response`: the request reaches AWS, which makes the change, and the connection closes
  before the answer: the caller sees a failure although the change happened;
- `propagation`: for `propagation_seconds` after a CreateInstanceProfile passed through, EC2
  refuses to associate that profile with its real "Invalid IAM Instance Profile name" error.
  The seconds are read on `clock` (real time unless a test passes a fake one to move by hand).

`hold(action)` parks requests of one action until `release()`, so a test can kill the caller
while it waits on exactly that call.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from tests.faults import aws_errors

# Rules under this key apply to every action without rules of its own.
ANY_ACTION = "*"
# Not forwarded: they describe one hop, not the request.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


@dataclass(frozen=True)
class Faults:
    """Chances (0..1) that a request of an action meets each fault; they must sum to <= 1."""

    throttle: float = 0.0
    server_error: float = 0.0
    drop_request: float = 0.0
    drop_response: float = 0.0
    # AssociateIamInstanceProfile only: how long a new profile stays invisible to EC2.
    propagation_seconds: float = 0.0

    def draw(self, rng: random.Random) -> str:
        """The fault kind for one request, or "" to forward it."""
        roll = rng.random()
        for kind in ("throttle", "server_error", "drop_request", "drop_response"):
            chance: float = getattr(self, kind)
            if roll < chance:
                return kind
            roll -= chance
        return ""


@dataclass(frozen=True)
class Exchange:
    """One request as the proxy handled it."""

    action: str
    service: str
    params: dict[str, str]
    # The fault injected, or "" when the request was forwarded and answered.
    fault: str
    # AWS's HTTP status when the request reached AWS (also for drop_response), else 0.
    status: int = 0
    response_body: bytes = b""
    # botocore's attempt number (its amz-sdk-request header); 1 for a first try.
    attempt: int = 1
    invocation_id: str = ""
    # Parked by hold() until release(): its caller may be gone by the time AWS answers.
    parked: bool = False

    @property
    def reached_aws(self) -> bool:
        return self.status != 0

    @property
    def answered(self) -> bool:
        """The caller got AWS's own answer."""
        return self.reached_aws and self.fault == ""

    @property
    def changed_aws(self) -> bool:
        """A mutating call AWS accepted, whether or not the caller heard so."""
        return self.action in aws_errors.MUTATING_ACTIONS and 200 <= self.status < 300


@dataclass
class _Hold:
    action: str = ""
    parked: int = 0
    forward_released: bool = True


@dataclass
class _State:
    rules: dict[str, Faults]
    exchanges: list[Exchange] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    profiles_created: dict[str, float] = field(default_factory=dict)
    hold: _Hold = field(default_factory=_Hold)


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) in this process; use as a context manager."""

    def __init__(
        self,
        upstream_url: str,
        seed: int = 0,
        rules: Mapping[str, Faults] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        upstream = urlsplit(upstream_url)
        self.upstream_host, self.upstream_port = upstream.hostname or "", upstream.port or 80
        self.seed = seed
        self._clock = clock
        self._state = _State(rules=dict(rules or {}))
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy")

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release(forward=False)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def set_rules(self, rules: Mapping[str, Faults]) -> None:
        """Replaces the rules; `set_rules({})` forwards everything from now on."""
        with self._changed:
            self._state.rules = dict(rules)

    # Counters -------------------------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        with self._changed:
            return list(self._state.exchanges)

    @property
    def requests(self) -> Counter[str]:
        """Requests received per action (every attempt, faulted or not)."""
        return Counter(e.action for e in self.exchanges)

    @property
    def faults(self) -> Counter[str]:
        """Faults injected per kind."""
        return Counter(e.fault for e in self.exchanges if e.fault)

    # Holding --------------------------------------------------------------------------------

    def hold(self, action: str) -> None:
        """Parks every request of `action` from now until `release()`."""
        with self._changed:
            self._state.hold = _Hold(action=action)

    def wait_until_held(self, timeout: float) -> bool:
        """True once a request of the held action is parked."""
        with self._changed:
            return self._changed.wait_for(lambda: self._state.hold.parked > 0, timeout)

    def wait_until(self, done: Callable[[list[Exchange]], bool], timeout: float) -> bool:
        """True once `done(exchanges so far)` holds, False after `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: done(self._state.exchanges), timeout)

    def release(self, *, forward: bool = True) -> None:
        """Lets parked requests go: on to AWS (`forward`), or dropped without reaching it."""
        with self._changed:
            self._state.hold.forward_released = forward
            self._state.hold.action = ""
            self._changed.notify_all()

    # Used by the request handler ------------------------------------------------------------

    def _park(self, action: str) -> bool | None:
        """None when `action` is not held; else waits for release() and says whether to forward."""
        with self._changed:
            hold = self._state.hold
            if not action or action != hold.action:
                return None
            hold.parked += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: hold.action != action)
            return hold.forward_released

    def _decide(self, action: str, params: dict[str, str]) -> str:
        """The fault the rules draw for a request ("" for none)."""
        with self._changed:
            if not action:
                return ""
            rules = self._state.rules.get(action) or self._state.rules.get(ANY_ACTION)
            if rules is None:
                return ""
            if self._profile_invisible(rules, action, params):
                return "propagation"
            # One generator per (seed, action, n-th request of it): the n-th CreateRole meets
            # the same fate in every run, however requests of other actions interleave.
            self._state.seen[action] += 1
            return rules.draw(random.Random(f"{self.seed}:{action}:{self._state.seen[action]}"))

    def _profile_invisible(self, rules: Faults, action: str, params: dict[str, str]) -> bool:
        if action != "AssociateIamInstanceProfile" or rules.propagation_seconds <= 0:
            return False
        created = self._state.profiles_created.get(aws_errors.associated_profile_name(params))
        return created is not None and self._clock() - created < rules.propagation_seconds

    def _record(self, exchange: Exchange) -> None:
        with self._changed:
            self._state.exchanges.append(exchange)
            if exchange.action == "CreateInstanceProfile" and exchange.changed_aws:
                name = exchange.params.get("InstanceProfileName", "")
                self._state.profiles_created[name] = self._clock()
            self._changed.notify_all()

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            # The Host header is forwarded as sent: it is part of the SigV4 signature.
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, response.reason, response.getheaders(), response.read()
        finally:
            connection.close()


def _attempt(header: str) -> int:
    # botocore sends "attempt=2; max=5" on its second try.
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt" and value.isdigit():
            return int(value)
    return 1


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would drown the test output

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def do_HEAD(self) -> None:
            self._handle()

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            params = aws_errors.query_params(self.path, self.headers.get("Content-Type", ""), body)
            action = params.get("Action", "")
            service = aws_errors.service_of(self.headers.get("Authorization", ""))
            forward_parked = proxy._park(action)
            if forward_parked is None:
                fault = proxy._decide(action, params)
            else:
                fault = "" if forward_parked else "drop_request"
            base = Exchange(
                action=action,
                service=service,
                params=params,
                fault=fault,
                attempt=_attempt(self.headers.get("amz-sdk-request", "")),
                invocation_id=self.headers.get("amz-sdk-invocation-id", ""),
                parked=forward_parked is not None,
            )
            if fault in ("", "drop_response"):
                self._pass_through(base, body)
            elif fault == "drop_request":
                proxy._record(base)
                self.close_connection = True
            else:
                status, error = self._injected(fault, service, params, base)
                proxy._record(base)
                self._answer(status, [("Content-Type", "text/xml")], error)

        def _pass_through(self, base: Exchange, body: bytes) -> None:
            status, reason, headers, answer = proxy._forward(
                self.command, self.path, list(self.headers.items()), body
            )
            proxy._record(replace(base, status=status, response_body=answer))
            if base.fault == "drop_response":
                self.close_connection = True
                return
            kept = [(n, v) for n, v in headers if n.lower() not in _HOP_BY_HOP]
            self._answer(status, kept, answer, reason)

        def _injected(
            self, fault: str, service: str, params: dict[str, str], base: Exchange
        ) -> tuple[int, bytes]:
            if fault == "throttle":
                return aws_errors.throttling(service)
            if fault == "propagation":
                return aws_errors.profile_not_visible(params)
            status = random.Random(f"{proxy.seed}:{base.invocation_id}:{base.attempt}").choice(
                (500, 503)
            )
            return aws_errors.server_error(service, status)

        def _answer(
            self, status: int, headers: list[tuple[str, str]], body: bytes, reason: str = ""
        ) -> None:
            try:
                self.send_response_only(status, reason or None)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                self.wfile.flush()
            except OSError:
                # The caller is gone (killed while its request was parked): nobody to answer.
                self.close_connection = True

    return Handler
