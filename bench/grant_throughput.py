"""Grant and revoke throughput through the real gRPC server against the sandbox emulator.

Prints operations, wall time, operations per second and latency percentiles. Every request goes
to loopback; the run is bounded by --instances x --grants.

    .venv/bin/python bench/grant_throughput.py --instances 4 --grants 10 --threads 4
"""

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.entrypoints.grpc.server import start_server
from broker.sandbox.box import sandbox
from broker.settings import Settings


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def report(name: str, latencies: list[float], wall: float) -> None:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(
        f"{name:<7} {len(ordered):>5} ops in {wall:6.2f} s = {len(ordered) / wall:7.1f} ops/s   "
        f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
        f"max {ordered[-1] * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--grants", type=int, default=10, help="grants per instance")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    with sandbox(Settings(propagation_timeout=30)) as box:
        running = start_server(box.runtime.bus, "127.0.0.1:0", box.runtime.database_reachable)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = broker_pb2_grpc.AccessBrokerStub(channel)
                instances = [box.emulator.run_instance() for _ in range(args.instances)]
                requests = [
                    pb.GrantAccessRequest(
                        instance_id=i, bucket=box.bucket, access=pb.ACCESS_UPLOAD, prefix=f"p{n}/"
                    )
                    for i in instances
                    for n in range(args.grants)
                ]
                grant_ids: list[str] = []

                def grant(request: pb.GrantAccessRequest) -> float:
                    started = time.perf_counter()
                    grant_ids.append(stub.GrantAccess(request).grant.grant_id)
                    return time.perf_counter() - started

                def revoke(grant_id: str) -> float:
                    return timed(
                        lambda: stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=grant_id))
                    )

                with ThreadPoolExecutor(args.threads) as pool:
                    started = time.perf_counter()
                    granted = list(pool.map(grant, requests))
                    report("grant", granted, time.perf_counter() - started)
                    started = time.perf_counter()
                    revoked = list(pool.map(revoke, list(grant_ids)))
                    report("revoke", revoked, time.perf_counter() - started)
        finally:
            running.stop(grace=0)


if __name__ == "__main__":
    main()
