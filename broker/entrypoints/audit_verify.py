"""`access-broker audit verify`: recompute the audit trail's hash chain, report the first break."""

import argparse
import sys

from broker.bootstrap import verify_audit_trail
from broker.domain.audit_chain import Anchor, ChainReport
from broker.domain.errors import StoreUnavailable

INTACT, BROKEN, UNVERIFIED = 0, 1, 2

HELP = """\
Walks every audit event in id order, recomputes each one's hash and checks that it names the
hash of the event before it. Prints "audit chain intact: N events" and the newest event as an
anchor (EVENT_ID:HASH), or "audit chain broken at event ID: why" for the first broken link.

Editing, deleting or inserting an event breaks the chain, unless every later event is
rewritten too; cutting off the newest events leaves a shorter chain that is intact. Keep the
printed anchor outside the database and pass it with --anchor to a later verify: that event
must then still be there with that hash, which catches both.

Exit status: 0 intact, 1 broken, 2 not verified (database unreachable or not migrated).
The walk only reads; it changes nothing."""


def add_audit_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """`audit verify [--database-url URL] [--anchor EVENT_ID:HASH]` on `access-broker`."""
    audit = commands.add_parser("audit", help="check the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="{verify}", required=True)
    verify = audit_commands.add_parser(
        "verify",
        help="recompute the audit trail's hash chain and report the first broken link",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("--database-url", help="SQLAlchemy URL (BROKER_DATABASE_URL)")
    verify.add_argument(
        "--anchor",
        type=_anchor,
        metavar="EVENT_ID:HASH",
        help="an anchor a previous verify printed: require that event with that hash",
    )


def report_audit_trail(database_url: str, anchor: Anchor | None) -> int:
    """Prints the verdict on the audit trail at `database_url`; returns the exit status."""
    try:
        report = verify_audit_trail(database_url, anchor)
    except StoreUnavailable as error:
        return _unverified(str(error))
    print(_verdict(report))
    return INTACT if report.broken is None else BROKEN


def _anchor(text: str) -> Anchor:
    try:
        return Anchor.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _verdict(report: ChainReport) -> str:
    if report.broken is not None:
        return f"audit chain broken at event {report.broken.event_id}: {report.broken.reason}"
    intact = f"audit chain intact: {report.intact_events} events"
    return f"{intact}\nanchor: {report.newest}" if report.newest else intact


def _unverified(reason: str) -> int:
    print(f"access-broker: audit chain not verified: {reason}", file=sys.stderr)
    return UNVERIFIED
