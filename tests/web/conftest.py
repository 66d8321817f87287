"""The web app over a broker: the broker's own server over fakes (tests/unit/service), which
lists the web app among its delegates, and the app in-process behind a test client."""

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from accessbroker import BrokerClient
from accessbroker_web.app import create_app
from accessbroker_web.protection import CSRF_COOKIE
from accessbroker_web.settings import WebSettings
from broker.domain.access import Access
from broker.domain.approval import ApprovalRule
from broker.domain.authorization import AccessPolicy, Rule
from broker.entrypoints.grpc.auth import BearerTokens
from broker.entrypoints.grpc.security import ServerSecurity
from broker.entrypoints.grpc.server import start_server
from tests.credentials import stored_tokens
from tests.unit.service.fakes import INSTANCE, World, world

WEB_TOKEN = "web-app-token-8c7b6a"
REQUESTER, APPROVER, ADMIN = "dana", "erin", "root-admin"
POLICY = AccessPolicy(
    admins=frozenset({ADMIN}),
    delegates=frozenset({"web"}),
    rules=(
        Rule(1, (REQUESTER,), ("photos",), frozenset({Access.READ, Access.UPLOAD})),
        Rule(
            2,
            (REQUESTER,),
            ("vault",),
            frozenset(Access),
            approval=ApprovalRule((APPROVER,)),
        ),
    ),
)


@pytest.fixture
def w() -> World:
    return world(INSTANCE).with_policy(POLICY)


@pytest.fixture
def broker_address(w: World) -> Iterator[str]:
    security = ServerSecurity(BearerTokens(stored_tokens({"web": WEB_TOKEN})))
    running = start_server(w.bus, "127.0.0.1:0", lambda: True, 4, security=security)
    yield f"127.0.0.1:{running.port}"
    running.stop(grace=0)


def web_client(address: str, settings: WebSettings, peer: str = "testclient") -> TestClient:
    app = create_app(settings, lambda: BrokerClient(address, token=WEB_TOKEN))
    # https: the app's cookies are Secure, and a client keeps them only over https.
    return TestClient(app, base_url="https://testserver", client=(peer, 50000))


@pytest.fixture
def dev(broker_address: str) -> TestClient:
    settings = WebSettings(auth="dev", dev_identities=(REQUESTER, APPROVER, ADMIN))
    return web_client(broker_address, settings)


def csrf(client: TestClient) -> str:
    """The CSRF token the client's cookie holds (a page was loaded first)."""
    if CSRF_COOKIE not in client.cookies:
        client.get("/dev/login")
    return str(client.cookies[CSRF_COOKIE])


def sign_in(client: TestClient, identity: str) -> None:
    answer = client.post("/dev/login", data={"identity": identity, "csrf_token": csrf(client)})
    assert answer.status_code == 200 and f"Signed in as <strong>{identity}</strong>" in answer.text
