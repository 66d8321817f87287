"""End-to-end fixtures: the real server process, the generated stubs, the emulator with IAM on."""

import uuid
from collections.abc import Iterator

import pytest

from accessbroker.v1 import broker_pb2_grpc
from broker.sandbox import Emulator
from tests.e2e.broker_process import BrokerProcess


@pytest.fixture(scope="module")
def broker(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """One broker process per test module; tests isolate themselves with fresh instances."""
    database = tmp_path_factory.mktemp("broker") / "broker.db"
    process = BrokerProcess(emulator, f"sqlite:///{database}")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def stub(broker: BrokerProcess) -> broker_pb2_grpc.AccessBrokerStub:
    return broker.stub


@pytest.fixture
def instance_id(emulator: Emulator) -> str:
    """A fresh running instance with no instance profile."""
    return emulator.run_instance()


@pytest.fixture(scope="module")
def buckets(emulator: Emulator) -> tuple[str, str]:
    """Two buckets of this module's own."""
    suffix = uuid.uuid4().hex[:10]
    names = (f"e2e-data-{suffix}", f"e2e-other-{suffix}")
    for name in names:
        emulator.create_bucket(name)
    return names
