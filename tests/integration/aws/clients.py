"""The adapter's own clients, signed as the emulator's admin, and a port they cannot reach."""

import socket

from broker.adapters.aws.clients import AwsClients, make_aws_clients
from broker.sandbox import Emulator


def admin_clients(emulator: Emulator) -> AwsClients:
    return make_aws_clients(
        endpoint_url=emulator.endpoint_url,
        region=emulator.region,
        credentials=emulator.admin_credentials,
    )


def closed_port() -> int:
    """A port of localhost that nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
