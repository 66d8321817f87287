"""The adapter's own clients, signed as the emulator's admin."""

from broker.adapters.aws.clients import AwsClients, make_aws_clients
from broker.sandbox import Emulator


def admin_clients(emulator: Emulator) -> AwsClients:
    return make_aws_clients(
        endpoint_url=emulator.endpoint_url,
        region=emulator.region,
        credentials=emulator.admin_credentials,
    )
