"""The benchmark's yardstick: a bare grpcio server that answers any unary method with the bytes
of its request. No broker code, no interceptors; the same server model as the broker's (a sync
grpc.server on a pool of worker threads, as many as the broker's), in a process of its own.

Prints "echo serving on 127.0.0.1:PORT", then serves until its standard input closes.

    .venv/bin/python -m bench.echo_server
"""

import argparse
import sys
from concurrent import futures

import grpc

# The broker's default (broker/entrypoints/grpc/server.py, start_server's workers).
WORKERS = 24


def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


class EchoEveryMethod(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """Every method name is served, so the client calls the same paths as on the broker."""

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:  # type: ignore[type-arg]
        # No (de)serializers: the handler sees and returns the raw bytes.
        return grpc.unary_unary_rpc_method_handler(echo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=WORKERS)
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers))
    server.add_generic_rpc_handlers((EchoEveryMethod(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"echo serving on 127.0.0.1:{port}", flush=True)
    sys.stdin.read()
    server.stop(grace=0).wait()


if __name__ == "__main__":
    main()
