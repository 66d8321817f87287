"""`x-accessbroker-on-behalf-of` at the gRPC surface: a delegate's call is the named person's,
audited with `via`; anyone else naming a person is refused; a reserved or malformed name is an
invalid argument; the SDK sends the header for `acting_for`."""

from collections.abc import Iterator

import grpc
import pytest

from accessbroker import BrokerClient, errors
from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.access import Access
from broker.domain.authorization import AccessPolicy, Rule
from broker.entrypoints.grpc.auth import ON_BEHALF_OF, BearerTokens
from broker.entrypoints.grpc.security import ServerSecurity
from broker.entrypoints.grpc.server import start_server
from tests.credentials import stored_tokens
from tests.rpc import refusal
from tests.unit.service.fakes import INSTANCE, World, world

WEB_TOKEN, ALICE_TOKEN = "web-token-91ab", "alice-token-27cd"
POLICY = AccessPolicy(
    delegates=frozenset({"web"}),
    rules=(Rule(1, ("alice", "bob"), ("photos",), frozenset(Access)),),
)


@pytest.fixture
def w() -> World:
    return world(INSTANCE).with_policy(POLICY)


@pytest.fixture
def address(w: World) -> Iterator[str]:
    tokens = BearerTokens(stored_tokens({"web": WEB_TOKEN, "alice": ALICE_TOKEN}))
    running = start_server(w.bus, "127.0.0.1:0", lambda: True, 2, security=ServerSecurity(tokens))
    yield f"127.0.0.1:{running.port}"
    running.stop(grace=0)


def upload() -> pb.GrantAccessRequest:
    return pb.GrantAccessRequest(instance_id=INSTANCE, bucket="photos", access=pb.ACCESS_UPLOAD)


def call(address: str, token: str, person: str) -> pb.GrantAccessResponse:
    metadata = (("authorization", f"Bearer {token}"), (ON_BEHALF_OF, person))
    with grpc.insecure_channel(address) as channel:
        stub = broker_pb2_grpc.AccessBrokerStub(channel)
        response: pb.GrantAccessResponse = stub.GrantAccess(upload(), metadata=metadata)
        return response


def test_a_delegates_call_is_the_persons_and_audited_with_via(w: World, address: str) -> None:
    granted = call(address, WEB_TOKEN, "bob").grant

    assert granted.requested_by == "bob"
    [requested] = [e for e in w.db.snapshot().audit if e.action == "grant.requested"]
    assert (requested.actor, requested.detail["via"]) == ("bob", "web")


def test_anyone_else_naming_a_person_is_refused(w: World, address: str) -> None:
    refused = refusal(lambda: call(address, ALICE_TOKEN, "bob"))

    assert refused.code is grpc.StatusCode.PERMISSION_DENIED
    assert "alice may not act on behalf of others" in refused.message
    assert w.db.grants() == []


@pytest.mark.parametrize("person", ["system", " bob", ""])
def test_a_reserved_or_malformed_person_is_an_invalid_argument(
    w: World, address: str, person: str
) -> None:
    refused = refusal(lambda: call(address, WEB_TOKEN, person))

    assert refused.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(refused.violations) == {ON_BEHALF_OF}
    assert w.db.grants() == []


def test_the_sdk_acts_for_a_person(w: World, address: str) -> None:
    with BrokerClient(address, token=WEB_TOKEN) as web:
        as_bob = web.acting_for("bob")
        granted = as_bob.grant(INSTANCE, "photos", "read").grant
        with pytest.raises(errors.PermissionDenied):
            web.acting_for("carol").grant(INSTANCE, "photos", "read")

    assert granted.requested_by == "bob"
