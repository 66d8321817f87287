"""The adapter's own clients, signed as the emulator's admin, and a port they cannot reach."""

from broker.adapters.aws.clients import AwsClients, make_aws_clients
from broker.sandbox import Emulator
from tests.ports import free_port


def admin_clients(emulator: Emulator) -> AwsClients:
    return make_aws_clients(
        endpoint_url=emulator.endpoint_url,
        region=emulator.region,
        credentials=emulator.admin_credentials,
    )


def closed_port() -> int:
    """A port of localhost that nobody listens on."""
    return free_port()
