"""The client: one grpc.aio channel per server, a closed loop of calls in flight.

The same code drives the broker and the echo server, with the same request bytes on the same
method path: requests are serialized once, and answers are taken as bytes, not parsed, so the
client does the same work per call against either.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from bench.measure import Latencies

# A failing call is retried after this pause: an error must not spin the loop.
ERROR_PAUSE_SECONDS = 0.01


def raw_method(channel: grpc.aio.Channel, path: str) -> Any:
    """The unary method at `path` ("/package.Service/Method"), bytes in, bytes out."""
    return channel.unary_unary(path, request_serializer=None, response_deserializer=None)


async def closed_loop(
    method: Any, request: bytes, in_flight: int, seconds: float, timeout: float
) -> Latencies:
    """`in_flight` callers each call again as soon as their last call answers, until `seconds`
    have passed; then the calls under way finish. The elapsed time includes that drain."""
    result = Latencies()
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await method(request, timeout=timeout)
            except grpc.aio.AioRpcError as error:
                result.errors += 1
                result.first_error = result.first_error or f"{error.code().name}: {error.details()}"
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            result.seconds.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    result.elapsed = time.perf_counter() - started
    return result


@dataclass
class SideBySide:
    echo: Latencies
    broker: Latencies
    # The broker's calls in its warm-up, which `broker` leaves out.
    broker_warmup: Latencies

    @property
    def broker_requests(self) -> int:
        """Every request the broker was sent, warm-up and failures included."""
        runs = (self.broker, self.broker_warmup)
        return sum(run.calls + run.errors for run in runs)


async def side_by_side(
    echo: Any,
    broker: Any,
    request: bytes,
    *,
    in_flight: int,
    slices: int,
    slice_seconds: float,
    warmup_seconds: float,
    timeout: float,
) -> SideBySide:
    """The same request driven against both, in alternating slices (echo then broker, then
    broker then echo, ...), so that both meet the same load from the rest of the machine on
    average. A warm-up against each comes first and is not counted."""
    await closed_loop(echo, request, in_flight, warmup_seconds, timeout)
    warmup = await closed_loop(broker, request, in_flight, warmup_seconds, timeout)
    result = SideBySide(Latencies(), Latencies(), warmup)
    for n in range(slices):
        order = [(echo, result.echo), (broker, result.broker)]
        for method, total in order if n % 2 == 0 else reversed(order):
            total.add(await closed_loop(method, request, in_flight, slice_seconds, timeout))
    return result
