"""The gRPC server over a world's message bus, on a free port of localhost, for as long as a
test needs it."""

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from opentelemetry.trace import Tracer

from broker.entrypoints.grpc.metrics import ServerMetrics
from broker.entrypoints.grpc.security import PLAINTEXT_ANONYMOUS, ServerSecurity
from broker.entrypoints.grpc.server import start_server
from broker.service.messagebus import MessageBus


@contextmanager
def channel_to(
    bus: MessageBus,
    *,
    database_up: bool = True,
    workers: int = 2,
    security: ServerSecurity = PLAINTEXT_ANONYMOUS,
    credentials: grpc.ChannelCredentials | None = None,
    metrics: ServerMetrics | None = None,
    tracer: Tracer | None = None,
) -> Iterator[grpc.Channel]:
    """A channel to a server of the bus: plaintext, or TLS with these `credentials`. The
    server stops when the block ends."""
    running = start_server(
        bus,
        "127.0.0.1:0",
        lambda: database_up,
        workers,
        security=security,
        metrics=metrics,
        tracer=tracer,
    )
    address = f"127.0.0.1:{running.port}"
    try:
        with (
            grpc.insecure_channel(address)
            if credentials is None
            else grpc.secure_channel(address, credentials)
        ) as channel:
            yield channel
    finally:
        running.stop(grace=0)
