"""The adapters' own clients on the emulator, stubbed or not, and what their retries count on."""

from collections.abc import Iterator

import pytest
from botocore.stub import Stubber
from mypy_boto3_ec2.client import EC2Client
from mypy_boto3_iam.client import IAMClient

from broker.adapters.aws import BotoIam
from broker.adapters.aws.retry import RetryCounter
from broker.sandbox import Emulator
from tests.integration.aws.clients import admin_clients
from tests.integration.aws.clock import FakeClock

# Clients once per module: loading a service model takes a second or two per client.


@pytest.fixture(scope="module")
def iam_client(emulator: Emulator) -> IAMClient:
    return admin_clients(emulator).iam


@pytest.fixture(scope="module")
def ec2_client(emulator: Emulator) -> EC2Client:
    return admin_clients(emulator).ec2


@pytest.fixture
def iam_stub(iam_client: IAMClient) -> Iterator[Stubber]:
    with Stubber(iam_client) as stubber:
        yield stubber


@pytest.fixture
def ec2_stub(ec2_client: EC2Client) -> Iterator[Stubber]:
    with Stubber(ec2_client) as stubber:
        yield stubber


@pytest.fixture(scope="module")
def iam(iam_client: IAMClient) -> BotoIam:
    """BotoIam on the emulator, signed as its admin."""
    return BotoIam(iam_client, propagation_timeout=5.0)


@pytest.fixture
def counter() -> RetryCounter:
    return RetryCounter()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
