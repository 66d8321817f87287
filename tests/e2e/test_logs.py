"""The broker's JSON log: one object a line, each written for a call carrying its request id
(the caller's, or a new one, returned in the trailing metadata either way), one access-log
line per call with its code and caller, and never a token nor its digest."""

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from accessbroker.v1 import broker_pb2 as pb
from broker.sandbox import Emulator
from tests.credentials import write_tokens_file
from tests.e2e.broker_process import BrokerProcess
from tests.waiting import wait_for

TOKEN = "log-test-token-5f4e3d2c1b0a"
WRONG_TOKEN = "log-test-wrong-token-0a1b2c3d"
POLICY = 'rules:\n  - identities: ["*"]\n    buckets: ["*"]\n    access: [upload, read]\n'


@pytest.fixture(scope="module")
def broker(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    directory = tmp_path_factory.mktemp("logs")
    (directory / "policy.yaml").write_text(POLICY)
    process = BrokerProcess(
        emulator,
        f"sqlite:///{directory / 'broker.db'}",
        BROKER_AUTH_MODE="token",
        BROKER_TOKENS_FILE=str(write_tokens_file(directory / "tokens.yaml", {"svc-logs": TOKEN})),
        BROKER_POLICY_FILE=str(directory / "policy.yaml"),
        BROKER_LOG_FORMAT="json",
    )
    process.start()
    yield process
    process.stop()


def log_lines(broker: BrokerProcess) -> list[dict[str, Any]]:
    """Every line of the broker's output that is a log line; each must be a JSON object."""
    lines = [line for line in list(broker.output) if line.startswith("{")]
    return [json.loads(line) for line in lines]


def access_line(broker: BrokerProcess, request_id: str) -> dict[str, Any]:
    def access() -> list[dict[str, Any]]:
        return [
            line
            for line in log_lines(broker)
            if line["logger"] == "accessbroker.access" and line.get("request_id") == request_id
        ]

    [line] = wait_for(access, bool, what=f"the access-log line of request {request_id}")
    return line


def metadata(token: str, request_id: str = "") -> tuple[tuple[str, str | bytes], ...]:
    given: tuple[tuple[str, str | bytes], ...] = (("authorization", f"Bearer {token}"),)
    return (*given, ("x-request-id", request_id)) if request_id else given


def test_a_call_is_logged_with_the_callers_request_id_and_what_it_was_about(
    broker: BrokerProcess, instance_id: str, buckets: tuple[str, str]
) -> None:
    request = pb.GrantAccessRequest(
        instance_id=instance_id, bucket=buckets[0], access=pb.ACCESS_UPLOAD
    )

    answer, call = broker.stub.GrantAccess.with_call(
        request, metadata=metadata(TOKEN, "req-logs-0001"), timeout=60
    )

    assert ("x-request-id", "req-logs-0001") in call.trailing_metadata()
    line = access_line(broker, "req-logs-0001")
    assert line["grpc_method"] == "/accessbroker.v1.AccessBroker/GrantAccess"
    assert (line["grpc_code"], line["identity"]) == ("OK", "svc-logs")
    assert (line["grant_id"], line["instance_id"]) == (answer.grant.grant_id, instance_id)
    assert line["level"] == "INFO" and line["duration_ms"] >= 0 and line["time"]


def test_a_refused_call_gets_a_new_request_id_and_is_logged_with_its_code(
    broker: BrokerProcess,
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        broker.stub.GetGrant(pb.GetGrantRequest(grant_id="x"), metadata=metadata(WRONG_TOKEN))

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    # The error is also the call: grpc-stubs types its metadata loosely.
    trailing: Any = refused.value.trailing_metadata()
    [request_id] = [value for key, value in trailing if key == "x-request-id"]
    line = access_line(broker, request_id)
    assert line["grpc_code"] == "UNAUTHENTICATED"
    assert "identity" not in line


def test_no_token_nor_its_digest_is_ever_logged(
    broker: BrokerProcess, instance_id: str, buckets: tuple[str, str]
) -> None:
    request = pb.GrantAccessRequest(
        instance_id=instance_id, bucket=buckets[1], access=pb.ACCESS_READ
    )
    broker.stub.GrantAccess(request, metadata=metadata(TOKEN, "req-logs-0002"), timeout=60)
    with pytest.raises(grpc.RpcError):
        broker.stub.GrantAccess(request, metadata=metadata(WRONG_TOKEN, "req-logs-0003"))
    access_line(broker, "req-logs-0003")

    output = "".join(broker.output)
    for token in (TOKEN, WRONG_TOKEN):
        assert token not in output
        assert hashlib.sha256(token.encode()).hexdigest() not in output
    assert log_lines(broker), "the broker wrote no JSON log line at all"
