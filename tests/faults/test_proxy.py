"""The fault proxy itself: it forwards faithfully, and each fault looks to botocore like AWS's."""

import contextlib
import http.client
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from broker.sandbox import Emulator
from tests.faults import FaultProxy, Faults
from tests.waiting import WAIT_SECONDS

IAM_AUTHORIZATION = "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/iam/aws4_request, x"
ANSWER = b"<answer>\x00\xff exactly these bytes</answer>"


class _Echo(BaseHTTPRequestHandler):
    """Records what reached it and answers ANSWER with a header of its own."""

    protocol_version = "HTTP/1.1"
    received: ClassVar[list[tuple[str, str, list[tuple[str, str]], bytes]]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.command, self.path, list(self.headers.items()), body))
        self.send_response_only(200)
        self.send_header("X-Upstream", "echo")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)


@pytest.fixture
def echo_url() -> Iterator[str]:
    _Echo.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _post(url: str, action: str, extra: str = "") -> http.client.HTTPResponse:
    host_port = url.removeprefix("http://")
    connection = http.client.HTTPConnection(host_port, timeout=10)
    body = f"Action={action}&Version=2010-05-08{extra}".encode()
    connection.request(
        "POST",
        "/some/path?x=1",
        body=body,
        headers={
            "Authorization": IAM_AUTHORIZATION,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Amz-Date": "20250101T000000Z",
        },
    )
    return connection.getresponse()


def test_forwards_request_and_answer_unchanged(echo_url: str) -> None:
    with FaultProxy(echo_url, seed=1) as proxy:
        response = _post(proxy.url, "CreateRole", "&RoleName=r%2Bx")
        answer = response.read()

    method, path, headers, body = _Echo.received[0]
    assert (method, path, body) == (
        "POST",
        "/some/path?x=1",
        b"Action=CreateRole&Version=2010-05-08&RoleName=r%2Bx",
    )
    sent = dict(headers)
    assert sent["Host"] == proxy.url.removeprefix("http://")  # signed, so kept as sent
    assert sent["Authorization"] == IAM_AUTHORIZATION
    assert sent["X-Amz-Date"] == "20250101T000000Z"
    assert (response.status, response.getheader("X-Upstream"), answer) == (200, "echo", ANSWER)
    assert proxy.requests == {"CreateRole": 1}
    assert proxy.exchanges[0].params["RoleName"] == "r+x"


def test_signed_calls_pass_the_emulators_authorization(emulator: Emulator) -> None:
    with FaultProxy(emulator.endpoint_url, seed=1) as proxy:
        iam = _client(emulator, proxy, "iam")
        name = f"proxy-{uuid.uuid4().hex[:8]}"
        iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")
        assert iam.get_role(RoleName=name)["Role"]["RoleName"] == name
    assert proxy.exchanges[0].changed_aws


def _client(emulator: Emulator, proxy: FaultProxy, service: str) -> Any:
    """A client through the proxy that does not retry: each fault reaches the test as is."""
    key = emulator.admin_credentials
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=proxy.url,
        region_name=emulator.region,
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def _error(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response: Any = raised.value.response
    error = response["Error"]
    return error["Code"], response["ResponseMetadata"]["HTTPStatusCode"], error["Message"]


def test_throttling_reads_as_each_services_own(emulator: Emulator) -> None:
    rules = {"*": Faults(throttle=1.0)}
    with FaultProxy(emulator.endpoint_url, seed=1, rules=rules) as proxy:
        iam, ec2 = _client(emulator, proxy, "iam"), _client(emulator, proxy, "ec2")
        assert _error(iam.list_roles) == ("Throttling", 400, "Rate exceeded")
        assert _error(ec2.describe_instances) == (
            "RequestLimitExceeded",
            503,
            "Request limit exceeded.",
        )
    assert proxy.faults == {"throttle": 2}


def test_server_errors_are_5xx(emulator: Emulator) -> None:
    with FaultProxy(emulator.endpoint_url, seed=1, rules={"*": Faults(server_error=1.0)}) as p:
        iam, ec2 = _client(emulator, p, "iam"), _client(emulator, p, "ec2")
        for _ in range(4):
            code, status, _ = _error(iam.list_roles)
            assert (code, status) in {("InternalFailure", 500), ("ServiceUnavailable", 503)}
            code, status, _ = _error(ec2.describe_instances)
            assert (code, status) in {("InternalError", 500), ("Unavailable", 503)}


@pytest.mark.parametrize(("kind", "role_made"), [("drop_request", False), ("drop_response", True)])
def test_dropped_connections(emulator: Emulator, kind: str, role_made: bool) -> None:
    """Both look the same to the caller; only a dropped answer leaves the change made."""
    name = f"proxy-{uuid.uuid4().hex[:8]}"
    with FaultProxy(
        emulator.endpoint_url, seed=1, rules={"CreateRole": Faults(**{kind: 1.0})}
    ) as p:
        with pytest.raises(ConnectionClosedError):
            _client(emulator, p, "iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")
        assert [e.changed_aws for e in p.exchanges] == [role_made]
    roles = emulator.client("iam").list_roles()["Roles"]
    assert (name in {r["RoleName"] for r in roles}) is role_made


class _SetClock:
    """Seconds that move only when the test sets them."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_new_profile_is_invisible_to_ec2_for_a_while(emulator: Emulator) -> None:
    instance_id = emulator.run_instance()
    name = f"proxy-{uuid.uuid4().hex[:8]}"
    rules = {"AssociateIamInstanceProfile": Faults(propagation_seconds=1.0)}
    # The window is read on a clock this test sets, so its start and end are where the test
    # says, however long the calls take.
    clock = _SetClock()
    with FaultProxy(emulator.endpoint_url, seed=1, rules=rules, clock=clock) as proxy:
        iam, ec2 = _client(emulator, proxy, "iam"), _client(emulator, proxy, "ec2")
        iam.create_instance_profile(InstanceProfileName=name)
        associate = ec2.associate_iam_instance_profile
        profile = {"InstanceId": instance_id, "IamInstanceProfile": {"Name": name}}
        invisible = (
            "InvalidParameterValue",
            400,
            f"Value ({name}) for parameter iamInstanceProfile.name is invalid. "
            "Invalid IAM Instance Profile name",
        )
        assert _error(associate, **profile) == invisible
        clock.now = 0.875  # still within the window
        assert _error(associate, **profile) == invisible
        clock.now = 1.0  # the window has just ended
        associate(**profile)
    assert proxy.faults == {"propagation": 2}


def test_the_seed_decides_which_requests_fail(echo_url: str) -> None:
    rules = {"*": Faults(throttle=0.2, server_error=0.2, drop_request=0.1, drop_response=0.1)}

    def fates(seed: int) -> list[str]:
        with FaultProxy(echo_url, seed=seed, rules=rules) as proxy:
            for n in range(40):
                with contextlib.suppress(http.client.RemoteDisconnected, ConnectionError):
                    _post(proxy.url, ("CreateRole", "DeleteRole")[n % 2]).read()
            return [e.fault for e in proxy.exchanges]

    first = fates(7)
    assert first == fates(7)
    assert first != fates(8)
    assert {"throttle", "server_error", "drop_request", "drop_response", ""} <= set(first)


def test_a_held_action_waits_for_release(echo_url: str) -> None:
    with FaultProxy(echo_url, seed=1) as proxy:
        proxy.hold("DeleteRole")
        answers: list[int] = []
        caller = threading.Thread(
            target=lambda: answers.append(_post(proxy.url, "DeleteRole").status)
        )
        caller.start()
        assert proxy.wait_until_held(timeout=WAIT_SECONDS)
        assert _post(proxy.url, "CreateRole").status == 200  # other actions pass
        assert answers == [] and len(_Echo.received) == 1
        proxy.release()
        caller.join(timeout=WAIT_SECONDS)
    assert answers == [200]
    assert [e.action for e in proxy.exchanges] == ["CreateRole", "DeleteRole"]
