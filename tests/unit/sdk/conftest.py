"""The SDK against an in-process gRPC server whose servicer is a scripted FakeBroker."""

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from accessbroker import BrokerClient
from accessbroker.v1 import broker_pb2_grpc
from tests.unit.sdk.fake_broker import FakeBroker


@pytest.fixture
def fake() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def address(fake: FakeBroker) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    broker_pb2_grpc.add_AccessBrokerServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture
def client(address: str) -> Iterator[BrokerClient]:
    with BrokerClient(address, timeout=5.0) as broker:
        yield broker
