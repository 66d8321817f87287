"""Any input on the gRPC surface gets an answer, never INTERNAL/UNKNOWN, and refusals write nothing.

Hypothesis drives every field of every RPC (through the generated stubs, so every string is valid
UTF-8) and raw bytes as a request body (where it need not be), against a real server on
localhost over the hand-written fakes.
"""

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.entrypoints.grpc.mapping import encode_page_token
from broker.entrypoints.grpc.server import MAX_MESSAGE_BYTES
from broker.entrypoints.grpc.servicer import FEED_START_METADATA
from broker.service.ports import GrantFilter
from tests.rpc import Refusal, refusal
from tests.unit.entrypoints.serving import channel_to
from tests.unit.service.fakes import INSTANCE, OTHER_INSTANCE, World, world

T = TypeVar("T")
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
# A refusal of valid input for a reason of the world's state, not of the request's shape.
STATE_REFUSALS = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def texts(*valid: str) -> st.SearchStrategy[str]:
    """Valid values, near misses, any Unicode (NUL and controls too), and huge strings."""
    return st.one_of(
        st.sampled_from(["", *valid]),
        st.text(alphabet="abcdefi0123456789-./_*?\x00\t\n é", max_size=80),
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300),
        st.builds(
            lambda piece, count: piece * count,
            st.sampled_from(["a", "0", "/", "\x00", "é", "\U0001d11e", "\u202e"]),
            st.integers(0, 300_000),
        ),
    )


def edges(values: st.SearchStrategy[int], *special: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(special), values)


@pytest.fixture(scope="module", params=["fake-store", "sqlite-store"])
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, grpc.Channel, list[str]]]:
    """A server over fake AWS and a fake or SQLite store, with grants for valid ids to aim at.

    The SQLite store is there for what only a real database refuses (integers beyond its
    range, say); it is fast enough to fuzz.
    """
    w = world(INSTANCE, OTHER_INSTANCE)
    engine = None
    if request.param == "sqlite-store":
        engine = create_engine_for(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'broker.db'}")
        upgrade_to_head(engine)
        w = w.with_store(sql_unit_of_work_factory(engine))
    try:
        with channel_to(w.bus, workers=4) as channel:
            stub = broker_pb2_grpc.AccessBrokerStub(channel)
            grant_ids = [
                stub.GrantAccess(
                    pb.GrantAccessRequest(instance_id=INSTANCE, bucket="photos", access=access)
                ).grant.grant_id
                for access in (pb.ACCESS_UPLOAD, pb.ACCESS_READ)
            ]
            # Events of another instance, which a watch of one instance must not send.
            stub.GrantAccess(
                pb.GrantAccessRequest(
                    instance_id=OTHER_INSTANCE, bucket="photos", access=pb.ACCESS_LIST
                )
            )
            yield w, channel, grant_ids
    finally:
        if engine is not None:
            engine.dispose()


def _written(w: World) -> tuple[int, int, int]:
    """What the store holds, in brief: grants, the newest audit event, AWS changes made."""
    with w.ports.uow() as uow:
        grants = len(uow.grants.list(GrantFilter(), after=None, limit=10_000).items)
        newest_event = uow.audit.last_event_id()
    return grants, newest_event, len(w.aws.calls)


def _answer(call: Callable[[], object]) -> Refusal:
    """How the call ended: its refusal, or OK."""
    try:
        return refusal(call)
    except AssertionError:  # refusal()'s word for "the call succeeded"
        return Refusal(grpc.StatusCode.OK, "", {})


def _check(
    w: World, request: Message, call: Callable[[], object], *, may_refuse_for_state: bool = True
) -> None:
    """The answer is one a caller can act on, and a request refused as invalid wrote nothing."""
    before = _written(w)
    answer = _answer(call)
    code, violations = answer.code, answer.violations

    if request.ByteSize() > MAX_MESSAGE_BYTES:
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        return
    allowed = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
    allowed |= STATE_REFUSALS if may_refuse_for_state else {grpc.StatusCode.NOT_FOUND}
    assert code in allowed, f"{code} for {request!r:.300}"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        fields = {f.name for f in request.DESCRIPTOR.fields}
        assert violations, "INVALID_ARGUMENT names the fields at fault"
        assert set(violations) <= fields, violations
        assert _written(w) == before


def _stub(channel: grpc.Channel) -> broker_pb2_grpc.AccessBrokerStub:
    return broker_pb2_grpc.AccessBrokerStub(channel)


class Fields:
    """Draws each field of a request valid, except those Hypothesis chose to break.

    A broken field gets anything at all (texts(), edges()), so every field is fuzzed alone and
    in company, and requests with every field valid still reach the store and the fake AWS.
    """

    def __init__(self, data: st.DataObject, *names: str) -> None:
        self._data = data
        one = st.sampled_from(names).map(lambda name: {name})
        self._broken = data.draw(st.one_of(one, st.sets(st.sampled_from(names))), label="broken")

    def __call__(self, name: str, valid: st.SearchStrategy[T], anything: st.SearchStrategy[T]) -> T:
        return self._data.draw(anything if name in self._broken else valid, label=name)


def valid(*values: T) -> st.SearchStrategy[T]:
    return st.sampled_from(values)


@FUZZ
@given(data=st.data())
def test_grant_access_answers_any_request(
    fuzzed: tuple[World, grpc.Channel, list[str]], data: st.DataObject
) -> None:
    w, channel, _ = fuzzed
    field = Fields(data, "instance_id", "bucket", "access", "prefix", "ttl", "reason", "key")
    request = pb.GrantAccessRequest(
        instance_id=field("instance_id", valid(INSTANCE, OTHER_INSTANCE), texts(INSTANCE)),
        bucket=field("bucket", valid("photos", "reports", "a.b-c"), texts("photos")),
        access=field("access", valid(1, 2, 3, 4), edges(INT32, 0, 5, -1)),  # type: ignore[arg-type]
        prefix=field("prefix", st.from_regex(r"[a-z0-9/._-]{0,40}", fullmatch=True), texts()),
        reason=field("reason", valid("", "nightly job"), texts()),
        idempotency_key=field("key", valid("", "key-1", "key-2"), texts()),
        dry_run=data.draw(st.booleans(), label="dry_run"),
    )
    ttl = field(
        "ttl",
        st.none() | st.tuples(st.integers(1, 10**9), st.integers(0, 999_999_999)),
        st.tuples(edges(INT64, 0, -1, 2**62), edges(INT32, 0, -1, 10**9, -(10**9))),
    )
    if ttl is not None:
        request.ttl.seconds, request.ttl.nanos = ttl

    _check(w, request, lambda: _stub(channel).GrantAccess(request, timeout=10))


@FUZZ
@given(data=st.data())
def test_revoke_access_answers_any_request(
    fuzzed: tuple[World, grpc.Channel, list[str]], data: st.DataObject
) -> None:
    w, channel, grant_ids = fuzzed
    field = Fields(data, "grant_id", "reason", "key")
    request = pb.RevokeAccessRequest(
        grant_id=field("grant_id", valid(*grant_ids, str(uuid.UUID(int=999))), texts()),
        reason=field("reason", valid("", "done"), texts()),
        idempotency_key=field("key", valid("", "key-1"), texts()),
    )

    _check(w, request, lambda: _stub(channel).RevokeAccess(request, timeout=10))


@FUZZ
@given(data=st.data())
def test_get_grant_and_describe_instance_answer_any_request(
    fuzzed: tuple[World, grpc.Channel, list[str]], data: st.DataObject
) -> None:
    w, channel, grant_ids = fuzzed
    field = Fields(data, "grant_id", "instance_id")
    get = pb.GetGrantRequest(
        grant_id=field("grant_id", valid(*grant_ids), texts(grant_ids[0].upper()))
    )
    describe = pb.DescribeInstanceAccessRequest(
        instance_id=field("instance_id", valid(INSTANCE, "i-0000000000000000f"), texts())
    )

    _check(w, get, lambda: _stub(channel).GetGrant(get, timeout=10), may_refuse_for_state=False)
    _check(
        w,
        describe,
        lambda: _stub(channel).DescribeInstanceAccess(describe, timeout=10),
        may_refuse_for_state=False,
    )


def page_tokens(kind: str) -> st.SearchStrategy[str]:
    """Tokens of this listing and the other, with cursors out of any range, and garbage."""
    cursors = edges(st.integers(-(2**70), 2**200), 0, 1, 2**31 - 1, 2**31, 2**63 - 1, 2**63)
    beyond = st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, 10**30])
    return st.one_of(
        st.builds(encode_page_token, st.just(kind), beyond),
        st.builds(encode_page_token, st.just(kind), cursors),
        st.builds(encode_page_token, st.sampled_from(["grants", "audit", ""]), cursors),
        texts("Z3JhbnRzOjE=", "YXVkaXQ6MQ==", "====", "Z3JhbnRzOi0x"),
        st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
    )


PAGE_SIZES = edges(INT32, -1, 1001, 2**31 - 1, -(2**31))
VALID_PAGE_SIZES = st.integers(0, 1000)


@FUZZ
@given(data=st.data())
def test_list_grants_answers_any_request(
    fuzzed: tuple[World, grpc.Channel, list[str]], data: st.DataObject
) -> None:
    w, channel, _ = fuzzed
    field = Fields(data, "instance_id", "bucket", "state", "page_size", "page_token")
    request = pb.ListGrantsRequest(
        instance_id=field("instance_id", valid("", INSTANCE), texts()),
        bucket=field("bucket", valid("", "photos"), texts()),
        state=field("state", st.integers(0, 6), edges(INT32, 7, -1)),  # type: ignore[arg-type]
        page_size=field("page_size", VALID_PAGE_SIZES, PAGE_SIZES),
        page_token=field(
            "page_token", valid("", encode_page_token("grants", 1)), page_tokens("grants")
        ),
    )

    _check(w, request, lambda: _stub(channel).ListGrants(request, timeout=10))


@FUZZ
@given(data=st.data())
def test_list_audit_events_answers_any_request(
    fuzzed: tuple[World, grpc.Channel, list[str]], data: st.DataObject
) -> None:
    w, channel, grant_ids = fuzzed
    field = Fields(data, "instance_id", "grant_id", "page_size", "page_token")
    request = pb.ListAuditEventsRequest(
        instance_id=field("instance_id", valid("", INSTANCE), texts()),
        grant_id=field("grant_id", valid("", *grant_ids), texts()),
        page_size=field("page_size", VALID_PAGE_SIZES, PAGE_SIZES),
        page_token=field(
            "page_token", valid("", encode_page_token("audit", 1)), page_tokens("audit")
        ),
    )

    _check(w, request, lambda: _stub(channel).ListAuditEvents(request, timeout=10))


# What a valid instance id looks like (DESIGN.md), written here apart from the server's own check.
INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# Long enough for any answer on a loaded machine: a refusal or a stream's start is an event to
# wait for, never a race against a short deadline.
ANSWER_SECONDS = 30.0
# How long a started watch is followed before the test leaves it. The feed never ends by itself,
# so the test's own cancel is the only way it may end.
FOLLOW_SECONDS = 0.3


def _watch_violations(request: pb.WatchAuditEventsRequest) -> set[str]:
    """The fields of a watch the server must refuse: a malformed instance id (empty means all
    instances) and a negative cursor (unset means only new events)."""
    bad = set()
    if request.instance_id and not INSTANCE_ID.fullmatch(request.instance_id):
        bad.add("instance_id")
    if request.HasField("after_event_id") and request.after_event_id < 0:
        bad.add("after_event_id")
    return bad


def _check_watch(
    w: World, request: pb.WatchAuditEventsRequest, watch: Callable[[float], Any]
) -> None:
    """An oversized watch is refused by the size limit and an invalid one as INVALID_ARGUMENT
    naming exactly the bad fields; a valid one starts where asked, sends only the events it
    promised and runs until the caller leaves. No watch ends by itself or in INTERNAL, and
    none writes anything."""
    before = _written(w)
    stream = watch(ANSWER_SECONDS)
    if request.ByteSize() > MAX_MESSAGE_BYTES:
        assert refusal(lambda: list(stream)).code == grpc.StatusCode.RESOURCE_EXHAUSTED
    elif invalid := _watch_violations(request):
        refused = refusal(lambda: list(stream))
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT, f"{refused} for {request!r:.300}"
        assert set(refused.violations) == invalid
    else:
        _follow_valid_watch(request, stream, newest_event=before[1])
    assert _written(w) == before


def _follow_valid_watch(
    request: pb.WatchAuditEventsRequest, stream: Any, newest_event: int
) -> None:
    # The feed's start arrives as soon as the server accepted the watch: waiting for it (not for
    # a deadline) tells an accepted watch from a refused one however loaded the machine is.
    start = dict(stream.initial_metadata() or ()).get(FEED_START_METADATA)
    assert start is not None, f"{stream.code()} {stream.details()} for {request!r:.300}"
    expected = request.after_event_id if request.HasField("after_event_id") else newest_event
    assert int(start) == expected
    leave = threading.Timer(FOLLOW_SECONDS, stream.cancel)
    leave.start()
    events: list[pb.AuditEvent] = []
    try:
        events.extend(stream)
    except grpc.RpcError:
        pass
    finally:
        leave.cancel()
    assert stream.code() == grpc.StatusCode.CANCELLED, f"{stream.code()} {stream.details()}"
    assert all(e.event_id > expected for e in events)
    assert all(e.instance_id == request.instance_id for e in events if request.instance_id)


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_watch_audit_events_answers_any_request(
    fuzzed: tuple[World, grpc.Channel, list[str]], data: st.DataObject
) -> None:
    w, channel, _ = fuzzed
    field = Fields(data, "after_event_id", "instance_id")
    request = pb.WatchAuditEventsRequest(
        instance_id=field("instance_id", valid("", INSTANCE, OTHER_INSTANCE), texts())
    )
    after_event_id = field(
        "after_event_id", st.none() | st.integers(0, 10), edges(INT64, -1, 2**63 - 1, -(2**63))
    )
    if after_event_id is not None:
        request.after_event_id = after_event_id

    _check_watch(
        w, request, lambda timeout: _stub(channel).WatchAuditEvents(request, timeout=timeout)
    )


@pytest.mark.parametrize("cursor", [2**63, 2**64, 10**30])
@pytest.mark.parametrize("listing", ["ListGrants", "ListAuditEvents"])
def test_a_page_token_beyond_any_id_is_invalid(
    fuzzed: tuple[World, grpc.Channel, list[str]], listing: str, cursor: int
) -> None:
    # Found by the fuzzing above: SQLite could not bind the cursor (OverflowError, INTERNAL).
    _, channel, _ = fuzzed
    kind, make = {
        "ListGrants": ("grants", pb.ListGrantsRequest),
        "ListAuditEvents": ("audit", pb.ListAuditEventsRequest),
    }[listing]
    request = make(page_token=encode_page_token(kind, cursor))

    refused = refusal(lambda: getattr(_stub(channel), listing)(request, timeout=10))

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(refused.violations) == {"page_token"}


# --- Below protobuf: raw bytes as the request body ----------------------------------------------

METHODS = [m.name for m in pb.DESCRIPTOR.services_by_name["AccessBroker"].methods]


def _identity(raw: bytes) -> bytes:
    return raw


def _request_type(method: str) -> type[Message]:
    """The message class the server parses `method`'s request body as."""
    descriptor = pb.DESCRIPTOR.services_by_name["AccessBroker"].methods_by_name[method]
    request_type: type[Message] = getattr(pb, descriptor.input_type.name)
    return request_type


def _raw(channel: grpc.Channel, method: str) -> Callable[[bytes], Any]:
    """A unary call, or a whole watch, sending `body` as it is."""
    path = f"/accessbroker.v1.AccessBroker/{method}"
    if method == "WatchAuditEvents":
        return lambda body: list(_raw_watch(channel)(body, timeout=ANSWER_SECONDS))
    unary = channel.unary_unary(path, request_serializer=_identity, response_deserializer=_identity)
    return lambda body: unary(body, timeout=ANSWER_SECONDS)


def _raw_watch(channel: grpc.Channel) -> Any:
    """WatchAuditEvents sending its body as it is; the events it streams are parsed."""
    return channel.unary_stream(
        "/accessbroker.v1.AccessBroker/WatchAuditEvents",
        request_serializer=_identity,
        response_deserializer=pb.AuditEvent.FromString,
    )


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    """One protobuf field; length-delimited payloads get their varint length."""
    key = bytes([number << 3 | wire_type])
    if wire_type != 2:
        return key + payload
    return key + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _serving(channel: grpc.Channel) -> bool:
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


# Bytes protobuf cannot parse, or parses into strings that are not UTF-8.
UNDECODABLE = st.one_of(
    st.binary(min_size=1, max_size=200),
    st.binary(max_size=50).map(lambda raw: _field(1, 2, b"\xff\xfe" + raw)),  # not UTF-8
    st.just(_field(1, 2, b"\xed\xa0\x80")),  # an encoded surrogate
    st.just(b"\x0a\xff\xff\xff\xff\x0f"),  # a length far beyond the body
    st.just(b"\x0b"),  # a group start, never closed
)


@settings(FUZZ, max_examples=30)
@given(method=st.sampled_from(METHODS), body=UNDECODABLE)
def test_raw_bytes_never_reach_the_servicer_and_the_server_keeps_serving(
    fuzzed: tuple[World, grpc.Channel, list[str]], method: str, body: bytes
) -> None:
    w, channel, _ = fuzzed
    request_type = _request_type(method)
    try:
        parsed = request_type.FromString(body)
    except DecodeError:
        parsed = None

    if parsed is None:
        # Bytes protobuf cannot parse are refused before any broker code runs (see
        # test_undecodable_bytes_are_invalid_arguments_and_change_nothing).
        before = _written(w)
        refused = refusal(lambda: _raw(channel, method)(body))
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT, f"{refused} for {body!r:.300}"
        assert set(refused.violations) == {"request"}
        assert "is not a valid message" in refused.violations["request"]
        assert _written(w) == before
    elif isinstance(parsed, pb.WatchAuditEventsRequest):
        # Bytes that happen to parse are an ordinary request, held to the same answers.
        _check_watch(w, parsed, lambda timeout: _raw_watch(channel)(body, timeout=timeout))
    else:
        _check(w, parsed, lambda: _raw(channel, method)(body))
    assert _serving(channel)


def test_undecodable_bytes_are_invalid_arguments_and_change_nothing(
    fuzzed: tuple[World, grpc.Channel, list[str]],
) -> None:
    w, channel, _ = fuzzed
    before = _written(w)
    not_utf8 = _field(1, 2, b"i-\xff\xfe")

    with pytest.raises(grpc.RpcError) as refused:
        _raw(channel, "GrantAccess")(not_utf8)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a valid message" in (refused.value.details() or "")
    assert _written(w) == before
    assert _serving(channel)


def test_an_oversized_request_is_refused_by_the_size_limit(
    fuzzed: tuple[World, grpc.Channel, list[str]],
) -> None:
    w, channel, _ = fuzzed
    before = _written(w)
    request = pb.GrantAccessRequest(instance_id=INSTANCE, bucket="photos", access=pb.ACCESS_READ)
    request.reason = "x" * MAX_MESSAGE_BYTES

    code = refusal(lambda: _stub(channel).GrantAccess(request, timeout=10)).code

    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _written(w) == before
    assert _serving(channel)
