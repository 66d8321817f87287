"""The gRPC surface over fakes: a server on the world `w` (tests/unit/conftest.py)."""

from collections.abc import Iterator

import pytest

from accessbroker.v1 import broker_pb2_grpc
from tests.unit.entrypoints.serving import channel_to
from tests.unit.service.fakes import World


@pytest.fixture
def stub(w: World) -> Iterator[broker_pb2_grpc.AccessBrokerStub]:
    """A stub of a plaintext server over `w`, callers anonymous."""
    with channel_to(w.bus) as channel:
        yield broker_pb2_grpc.AccessBrokerStub(channel)
