"""brokerctl's command line: global options, one subcommand per verb."""

import argparse
import os
from collections.abc import Callable

from accessbroker.cli import commands, declarative
from accessbroker.cli.commands import Context
from accessbroker.cli.durations import parse_timeout
from accessbroker.cli.failures import EXIT_CODES_HELP
from accessbroker.models import Access, GrantState

Command = Callable[[Context, argparse.Namespace], None]

DESCRIPTION = "Grant EC2 instances least-privilege S3 access through the accessbroker."
EPILOG = f"""\
environment:
  BROKER_ADDRESS  the broker's host:port (default 127.0.0.1:50051); --address overrides it
  BROKER_TOKEN    bearer token sent with every call; --token overrides it

{EXIT_CODES_HELP}
Run `brokerctl COMMAND --help` for a command's options."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _access(text: str) -> Access:
    try:
        return Access.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _state(text: str) -> GrantState:
    try:
        return GrantState.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _timeout(text: str) -> float:
    try:
        return parse_timeout(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _event_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"invalid event id {text!r}: must be a whole number")
    return int(text)


def _global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    """On the main parser and on every subcommand, so `brokerctl list -o json` works too; a
    subcommand's copy has no defaults, so it only overrides what was given after the verb."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if in_subcommand else value

    parser.add_argument(
        "--address", default=default(None), help="broker host:port (env BROKER_ADDRESS)"
    )
    parser.add_argument("--token", default=default(None), help="bearer token (env BROKER_TOKEN)")
    for option, env, what in (
        ("--tls-ca", "BROKER_TLS_CA", "the CA (PEM) the broker's certificate is checked against"),
        ("--tls-cert", "BROKER_TLS_CERT", "your client certificate (PEM), for mtls"),
        ("--tls-key", "BROKER_TLS_KEY", "its private key (PEM)"),
    ):
        parser.add_argument(option, default=default(None), help=f"{what} (env {env})")
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default=default("table"),
        help="table for people (default), json for scripts",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brokerctl", description=DESCRIPTION, epilog=EPILOG, formatter_class=_Formatter
    )
    _global_options(parser, in_subcommand=False)
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(name: str, run: Command, summary: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(
            name, help=summary, description=summary, epilog=EXIT_CODES_HELP,
            formatter_class=_Formatter,
        )  # fmt: skip
        _global_options(sub, in_subcommand=True)
        sub.set_defaults(run=run)
        return sub

    _grant_options(
        verb("grant", commands.grant, "Grant an instance access to a bucket (or a prefix).")
    )

    _approval_options(
        verb("approve", commands.approve, "Approve a request awaiting your approval."),
        verb("deny", commands.deny, "Deny a request awaiting your approval."),
    )

    revoke = verb("revoke", commands.revoke, "Revoke a grant, or withdraw a request.")
    revoke.add_argument("grant_id")
    revoke.add_argument("--reason", default="", help="why, for the audit trail")
    revoke.add_argument("--idempotency-key")

    extend = verb("extend", commands.extend, "Make a live grant last at least this long from now.")
    extend.add_argument("grant_id")
    extend.add_argument(
        "--ttl", required=True, help="from now: 90s, 15m, 8h, 2d (never shortens the grant)"
    )
    extend.add_argument("--reason", default="", help="why, for the audit trail")

    verb("get", commands.get, "Show one grant.").add_argument("grant_id")

    listing = verb("list", commands.list_grants, "List grants, oldest first.")
    listing.add_argument("--instance", help="only this instance's grants")
    listing.add_argument("--bucket", help="only grants on this bucket")
    listing.add_argument(
        "--state", type=_state, help="awaiting-approval, pending, active, failed, revoking, …"
    )
    listing.add_argument(
        "--mine-to-approve",
        action="store_true",
        help="the requests waiting for your approval, whoever asked",
    )
    _place_options(listing, listing=True)

    describe = verb(
        "describe", commands.describe, "Show an instance's role, profile, association and policy."
    )
    describe.add_argument("instance_id")
    _place_options(describe)

    audit = verb("audit", commands.audit, "Show the audit trail, or follow it with --follow.")
    audit.add_argument("--instance", help="only this instance's events")
    audit.add_argument("--grant", help="only this grant's events")
    # Not from BROKER_ACCOUNT / BROKER_REGION: they would narrow a trail nobody asked to narrow.
    audit.add_argument("--account", default="", help="only events in this account (id or name)")
    audit.add_argument("--region", default="", help="only events in this region")
    audit.add_argument("--after", type=_event_id, help="only events after this event id")
    audit.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new events (JSON lines with -o json)",
    )

    wait = verb("wait", commands.wait, "Wait until a grant reaches a state.")
    wait.add_argument("grant_id")
    wait.add_argument("--state", type=_state, default=GrantState.ACTIVE, help="default: active")
    wait.add_argument("--timeout", type=_timeout, default=120.0, help="seconds or 2m (default 120)")

    drift = verb(
        "drift",
        commands.drift,
        "Show how AWS differs from what live grants need; repair it with --repair.",
    )
    drift.add_argument("--instance", help="only this instance (default: every managed one)")
    drift.add_argument(
        "--repair", action="store_true", help="let the broker repair what it may (audited)"
    )
    _place_options(drift, listing=True)

    verb(
        "webhooks",
        commands.webhooks,
        "Show where grant state changes are sent and how deliveries stand (admins).",
    )

    _can_options(
        verb(
            "can",
            commands.can,
            "Explain whether an identity may have a grant, and why (admins; exit 4 if not).",
        )
    )

    for name, run, summary in (
        ("plan", declarative.plan, "Show what apply would grant and revoke; change nothing."),
        ("apply", declarative.apply, "Make the grants of the listed instances match a file."),
    ):
        sub = verb(name, run, summary)
        sub.add_argument("-f", "--file", required=True, help="request file (YAML), see examples/")
    return parser


def _grant_options(grant: argparse.ArgumentParser) -> None:
    grant.add_argument("--instance", required=True, help="EC2 instance id, i-…")
    grant.add_argument("--bucket", required=True)
    grant.add_argument(
        "--access", required=True, type=_access, help="upload, read, read-write, list"
    )
    grant.add_argument("--prefix", default="", help="object key prefix (default: whole bucket)")
    grant.add_argument("--ttl", help="expire after this long: 90s, 15m, 8h, 2d (default: never)")
    grant.add_argument("--reason", default="", help="why, for the audit trail")
    grant.add_argument("--idempotency-key", help="retrying with the same key never doubles it")
    grant.add_argument("--dry-run", action="store_true", help="show the policy and the changes")
    _place_options(grant)


def _place_options(command: argparse.ArgumentParser, *, listing: bool = False) -> None:
    """--account and --region: where the instance lives (a listing: only instances there)."""
    unset = "any" if listing else "the broker's own account"
    command.add_argument(
        "--account",
        default=os.environ.get("BROKER_ACCOUNT", ""),
        help=f"AWS account, by id or name (env BROKER_ACCOUNT; default: {unset})",
    )
    command.add_argument(
        "--region",
        default=os.environ.get("BROKER_REGION", ""),
        help="AWS region (env BROKER_REGION; default: "
        + ("any" if listing else "the account's first")
        + ")",
    )


def _approval_options(approve: argparse.ArgumentParser, deny: argparse.ArgumentParser) -> None:
    approve.add_argument("grant_id")
    approve.add_argument("--reason", default="", help="why, for the audit trail")
    approve.add_argument("--ttl", help="shorten the grant's ttl: 90s, 15m, 8h (never lengthens)")
    deny.add_argument("grant_id")
    deny.add_argument("--reason", default="", help="why, for the requester and the trail")


def _can_options(can: argparse.ArgumentParser) -> None:
    can.add_argument("--identity", required=True, help="the caller to ask for, e.g. svc-ci")
    can.add_argument("--instance", required=True, help="EC2 instance id, i-…")
    can.add_argument("--bucket", required=True)
    can.add_argument("--access", required=True, type=_access, help="upload, read, read-write, list")
    can.add_argument("--prefix", default="", help="object key prefix (default: whole bucket)")
    can.add_argument("--ttl", help="as it would be asked: 90s, 15m, 8h, 2d (default: none)")
    _place_options(can)
