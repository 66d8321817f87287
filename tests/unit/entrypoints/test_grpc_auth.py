"""Authentication at the gRPC surface, over fake ports: bearer tokens and client certificates."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.audit import NewAuditEvent, Outcome
from broker.domain.authorization import AccessPolicy
from broker.entrypoints.grpc.auth import BearerTokens, ClientCertificates
from broker.entrypoints.grpc.security import ServerSecurity
from broker.service.messagebus import MessageBus
from tests.credentials import CertificateAuthority, stored_tokens
from tests.rpc import refusal
from tests.unit.entrypoints.serving import channel_to
from tests.unit.service.fakes import INSTANCE, START, World

ALICE_TOKEN = "alice-token-4f9a2c"
BOB_TOKEN = "bob-token-77d1e0"
GRANT_METHOD = "/accessbroker.v1.AccessBroker/GrantAccess"
ONE_BEARER = "the authorization metadata must be one `Bearer <token>`"


@pytest.fixture
def tokens() -> BearerTokens:
    return BearerTokens(stored_tokens({"alice": ALICE_TOKEN, "bob": BOB_TOKEN}))


@pytest.fixture
def channel(w: World, tokens: BearerTokens) -> Iterator[grpc.Channel]:
    with channel_to(w.bus, security=ServerSecurity(tokens)) as channel:
        yield channel


def _bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def _upload(bucket: str = "photos") -> pb.GrantAccessRequest:
    return pb.GrantAccessRequest(instance_id=INSTANCE, bucket=bucket, access=pb.ACCESS_UPLOAD)


def test_a_token_names_the_caller_on_its_grants_and_in_the_audit_trail(
    w: World, channel: grpc.Channel
) -> None:
    stub = broker_pb2_grpc.AccessBrokerStub(channel)

    granted = stub.GrantAccess(_upload(), metadata=_bearer(ALICE_TOKEN)).grant

    assert granted.requested_by == "alice"
    requested = [e for e in w.db.snapshot().audit if e.action == "grant.requested"]
    assert [e.actor for e in requested] == ["alice"]
    assert {e.actor for e in w.db.snapshot().audit if e.action.startswith("aws.")} == {"alice"}


@pytest.mark.parametrize(
    ("metadata", "complaint"),
    [
        ((), "no credentials: send the metadata `authorization: Bearer <token>`"),
        (_bearer("not-a-known-token"), "the bearer token is not valid"),
        ((("authorization", f"Basic {ALICE_TOKEN}"),), ONE_BEARER),
        (_bearer(ALICE_TOKEN) + _bearer(BOB_TOKEN), ONE_BEARER),
        ((("authorization", "Bearer   "),), "the bearer token is empty"),
    ],
)
def test_calls_without_a_valid_token_are_unauthenticated_and_change_nothing(
    w: World, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...], complaint: str
) -> None:
    stub = broker_pb2_grpc.AccessBrokerStub(channel)

    refused = refusal(lambda: stub.GrantAccess(_upload(), metadata=metadata))

    assert refused.code == grpc.StatusCode.UNAUTHENTICATED
    assert refused.message == complaint
    assert ALICE_TOKEN not in refused.message
    assert (w.db.grants(), w.db.snapshot().audit, w.aws.calls) == ([], [], [])


def test_the_scheme_is_case_insensitive(channel: grpc.Channel) -> None:
    stub = broker_pb2_grpc.AccessBrokerStub(channel)
    metadata = (("authorization", f"bearer {BOB_TOKEN}"),)

    assert stub.GrantAccess(_upload(), metadata=metadata).grant.requested_by == "bob"


def test_authentication_comes_before_reading_the_request(channel: grpc.Channel) -> None:
    # Bytes no GrantAccessRequest decodes from: a caller without credentials learns nothing.
    raw = channel.unary_unary(GRANT_METHOD, request_serializer=None, response_deserializer=None)

    refused = refusal(lambda: raw(b"\x0a\xff\xff\xff", timeout=5))

    assert refused.code == grpc.StatusCode.UNAUTHENTICATED


def test_health_and_reflection_answer_without_credentials(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([request])
    )
    services = {s.name for a in answers for s in a.list_services_response.service}

    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert "accessbroker.v1.AccessBroker" in services


def test_each_call_is_served_as_its_own_caller_on_a_shared_worker(
    w: World, tokens: BearerTokens
) -> None:
    with channel_to(w.bus, security=ServerSecurity(tokens), workers=1) as channel:
        stub = broker_pb2_grpc.AccessBrokerStub(channel)
        first = stub.GrantAccess(_upload("photos"), metadata=_bearer(ALICE_TOKEN)).grant
        second = stub.GrantAccess(_upload("videos"), metadata=_bearer(BOB_TOKEN)).grant

    assert (first.requested_by, second.requested_by) == ("alice", "bob")


def test_an_audit_stream_runs_as_its_caller(w: World, tokens: BearerTokens) -> None:
    # Only admins may follow the audit trail, so the stream's answer shows who it ran as.
    w = w.with_policy(AccessPolicy(admins=frozenset({"alice"})))
    with channel_to(w.bus, security=ServerSecurity(tokens), workers=4) as channel:
        stub = broker_pb2_grpc.AccessBrokerStub(channel)
        request = pb.WatchAuditEventsRequest(after_event_id=0)
        # Streaming calls are untyped in grpc-stubs beyond iteration.
        admitted: Any = stub.WatchAuditEvents(request, metadata=_bearer(ALICE_TOKEN))
        started = dict(admitted.initial_metadata())
        admitted.cancel()
        bobs = stub.WatchAuditEvents(request, metadata=_bearer(BOB_TOKEN))
        denied = refusal(lambda: next(iter(bobs)))
        anonymous = refusal(lambda: next(iter(stub.WatchAuditEvents(request))))

    assert started["x-accessbroker-feed-start"] == "0"
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED


def test_replaced_tokens_take_effect_at_once(channel: grpc.Channel, tokens: BearerTokens) -> None:
    stub = broker_pb2_grpc.AccessBrokerStub(channel)

    tokens.replace(stored_tokens({"alice": "rotated-token"}))

    old = refusal(lambda: stub.GrantAccess(_upload(), metadata=_bearer(ALICE_TOKEN)))
    gone = refusal(lambda: stub.GrantAccess(_upload(), metadata=_bearer(BOB_TOKEN)))
    new = stub.GrantAccess(_upload(), metadata=_bearer("rotated-token"))
    assert (old.code, gone.code) == (grpc.StatusCode.UNAUTHENTICATED,) * 2
    assert new.grant.requested_by == "alice"


# --- client certificates, over an in-process TLS server


@contextmanager
def _mtls_stub(
    bus: MessageBus, ca: CertificateAuthority, client: Any
) -> Iterator[broker_pb2_grpc.AccessBrokerStub]:
    server = ca.issue("broker", server=True)
    credentials = grpc.ssl_server_credentials(
        [(server.key, server.certificate)], root_certificates=ca.pem, require_client_auth=True
    )
    security = ServerSecurity(ClientCertificates(), credentials)
    channel_credentials = grpc.ssl_channel_credentials(ca.pem, client.key, client.certificate)
    with channel_to(bus, security=security, credentials=channel_credentials) as channel:
        yield broker_pb2_grpc.AccessBrokerStub(channel)


@pytest.mark.parametrize(
    ("common_name", "uris", "identity"),
    [
        ("builder", ("spiffe://example.org/ci/builder",), "spiffe://example.org/ci/builder"),
        ("builder", (), "builder"),
    ],
)
def test_a_client_certificate_names_the_caller_by_uri_san_else_cn(
    w: World, ca: CertificateAuthority, common_name: str, uris: tuple[str, ...], identity: str
) -> None:
    with _mtls_stub(w.bus, ca, ca.issue(common_name, uris=uris)) as stub:
        granted = stub.GrantAccess(_upload()).grant

    assert granted.requested_by == identity


@pytest.mark.parametrize(
    ("common_name", "uris", "complaint"),
    [
        ("", (), "neither a URI SAN nor a subject CN"),
        ("x", ("spiffe://example.org/a", "spiffe://example.org/b"), "several URI SANs"),
        ("x" * 60, (f"spiffe://example.org/{'x' * 300}",), "identity is not usable"),
    ],
)
def test_a_certificate_without_one_usable_name_is_unauthenticated(
    w: World, ca: CertificateAuthority, common_name: str, uris: tuple[str, ...], complaint: str
) -> None:
    with _mtls_stub(w.bus, ca, ca.issue(common_name, uris=uris)) as stub:
        refused = refusal(lambda: stub.GrantAccess(_upload()))

    assert refused.code == grpc.StatusCode.UNAUTHENTICATED
    assert complaint in refused.message
    assert w.db.grants() == []


def _append_event(w: World, action: str) -> None:
    with w.db() as uow:
        uow.audit.append(
            NewAuditEvent(time=START, actor="test", action=action, outcome=Outcome.SUCCESS)
        )
        uow.commit()


@contextmanager
def _alices_audit_stream(w: World, tokens: BearerTokens) -> Iterator[Any]:
    """Alice, an admin, following the audit trail from its start; the first event read."""
    w = w.with_policy(AccessPolicy(admins=frozenset({"alice"})))
    _append_event(w, "before")
    with channel_to(w.bus, security=ServerSecurity(tokens), workers=4) as channel:
        stub = broker_pb2_grpc.AccessBrokerStub(channel)
        request = pb.WatchAuditEventsRequest(after_event_id=0)
        stream: Any = stub.WatchAuditEvents(request, metadata=_bearer(ALICE_TOKEN), timeout=10)
        assert next(stream).action == "before"
        yield w, stream


def test_an_open_stream_ends_when_its_token_is_withdrawn(w: World, tokens: BearerTokens) -> None:
    with _alices_audit_stream(w, tokens) as (_, stream):
        tokens.replace(stored_tokens({"bob": BOB_TOKEN}))
        _append_event(w, "after")

        ended = refusal(lambda: next(stream))

    assert ended.code == grpc.StatusCode.UNAUTHENTICATED


def test_an_open_stream_ends_when_its_caller_is_no_longer_an_admin(
    w: World, tokens: BearerTokens
) -> None:
    with _alices_audit_stream(w, tokens) as (secured, stream):
        secured.policy.replace(AccessPolicy())
        _append_event(w, "after")

        ended = refusal(lambda: next(stream))

    assert ended.code == grpc.StatusCode.PERMISSION_DENIED
    assert "audit.read_denied" in w.db.audit_actions()
