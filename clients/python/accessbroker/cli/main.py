"""brokerctl's entry point: parse, call the broker, and turn every failure into an exit code."""

import argparse
import os
import sys
from collections.abc import Sequence

import grpc

from accessbroker.cli.commands import Context
from accessbroker.cli.failures import INTERRUPTED, INVALID_INPUT, OK, describe_error, exit_code
from accessbroker.cli.parser import build_parser
from accessbroker.client import DEFAULT_ADDRESS, TLS_VARIABLES, BrokerClient, tls_from_environment


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # exits 2 with a usage message on bad input
    address = args.address or os.environ.get("BROKER_ADDRESS") or DEFAULT_ADDRESS
    token = args.token or os.environ.get("BROKER_TOKEN") or None
    try:
        tls = _tls(args)
    except ValueError as error:
        print(f"brokerctl: {error}", file=sys.stderr)
        return INVALID_INPUT
    try:
        with BrokerClient(address, token=token, tls=tls) as client:
            args.run(Context(client, json=args.output == "json", out=sys.stdout), args)
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`brokerctl audit -f | head`): not an error of ours. Point stdout
        # at /dev/null so that flushing it at exit does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except Exception as error:
        if os.environ.get("BROKERCTL_DEBUG"):
            raise
        for line in describe_error(error, address):
            print(line, file=sys.stderr)
        return exit_code(error)
    return OK


def _tls(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    """TLS from --tls-ca/--tls-cert/--tls-key, each else its BROKER_TLS_* variable; none named:
    plaintext."""
    named = (args.tls_ca, args.tls_cert, args.tls_key)
    given = {env: path for env, path in zip(TLS_VARIABLES, named, strict=True) if path}
    return tls_from_environment({**os.environ, **given})


if __name__ == "__main__":
    sys.exit(main())
