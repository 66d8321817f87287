"""The imperative commands: grant, approve, deny, revoke, extend, get, list, describe, audit,
wait."""

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TextIO

from accessbroker.cli import output
from accessbroker.cli.durations import parse_duration
from accessbroker.cli.failures import DENIED, CommandFailed, UsageError
from accessbroker.client import BrokerClient
from accessbroker.models import AuditEvent, GrantState


@dataclass(frozen=True)
class Context:
    client: BrokerClient
    json: bool
    out: TextIO

    def emit(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def emit_json(self, document: object, *, lines: bool = False) -> None:
        self.emit(output.dumps(document, lines=lines))


def _ttl(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise UsageError(f"--ttl: {error}") from None


def grant(ctx: Context, args: argparse.Namespace) -> None:
    ttl = _ttl(args.ttl) if args.ttl else None
    result = ctx.client.grant(
        args.instance,
        args.bucket,
        args.access,
        prefix=args.prefix,
        ttl=ttl,
        reason=args.reason,
        idempotency_key=args.idempotency_key,
        dry_run=args.dry_run,
        account=args.account,
        region=args.region,
    )
    if ctx.json:
        ctx.emit_json({"dry_run": args.dry_run, **output.to_json_value(result)})
    elif args.dry_run:
        where = output.location(args.bucket, args.prefix)
        changes = "\n".join(f"  - {c}" for c in result.planned_changes) or "  (none)"
        approval = (
            output.awaiting_approval(result.grant)
            if result.grant.state is GrantState.AWAITING_APPROVAL
            else ""
        )
        ctx.emit(
            f"Dry run, nothing was changed: {args.instance} would get {args.access} on {where}.\n"
            f"{approval}\nPlanned changes:\n{changes}\n\nResulting policy:\n"
            f"{output.policy_text(result.policy)}"
        )
    else:
        if result.covered_by:
            ctx.emit(f"Already covered by the broader grant {result.covered_by}; nothing new.\n")
        if result.grant.state is GrantState.AWAITING_APPROVAL:
            ctx.emit(output.awaiting_approval(result.grant))
        ctx.emit(output.grant_details(result.grant))
    if result.grant.state is GrantState.FAILED:
        raise CommandFailed(
            f"grant {result.grant.grant_id} failed: {result.grant.failure_reason or 'no reason'}"
        )


def approve(ctx: Context, args: argparse.Namespace) -> None:
    ttl = _ttl(args.ttl) if args.ttl else None
    result = ctx.client.approve(args.grant_id, reason=args.reason, ttl=ttl)
    if ctx.json:
        ctx.emit_json(result)
        return
    if result.notice:
        ctx.emit(f"{result.notice}\n")
    ctx.emit(output.grant_details(result.grant))


def deny(ctx: Context, args: argparse.Namespace) -> None:
    denied = ctx.client.deny(args.grant_id, reason=args.reason)
    ctx.emit_json(denied) if ctx.json else ctx.emit(output.grant_details(denied))


def revoke(ctx: Context, args: argparse.Namespace) -> None:
    revoked = ctx.client.revoke(
        args.grant_id, reason=args.reason, idempotency_key=args.idempotency_key
    )
    ctx.emit_json(revoked) if ctx.json else ctx.emit(output.grant_details(revoked))


def extend(ctx: Context, args: argparse.Namespace) -> None:
    extended = ctx.client.extend(args.grant_id, _ttl(args.ttl), reason=args.reason)
    ctx.emit_json(extended) if ctx.json else ctx.emit(output.grant_details(extended))


def get(ctx: Context, args: argparse.Namespace) -> None:
    found = ctx.client.get(args.grant_id)
    ctx.emit_json(found) if ctx.json else ctx.emit(output.grant_details(found))


def list_grants(ctx: Context, args: argparse.Namespace) -> None:
    grants = list(
        ctx.client.list_grants(
            instance_id=args.instance,
            bucket=args.bucket,
            state=args.state,
            awaiting_my_approval=args.mine_to_approve,
            account=args.account,
            region=args.region,
        )
    )
    ctx.emit_json({"grants": grants}) if ctx.json else ctx.emit(output.grants_table(grants))


def describe(ctx: Context, args: argparse.Namespace) -> None:
    access = ctx.client.describe(args.instance_id, account=args.account, region=args.region)
    if ctx.json:
        ctx.emit_json(access)
        return
    summary = output.fields(
        [
            ("instance", access.instance_id),
            ("where", output.place(access.account, access.region)),
            ("role", access.role_arn or access.role_name),
            ("instance profile", access.instance_profile_arn or access.instance_profile_name),
            ("association", access.association_id),
        ]
    )
    grants = output.grants_table(access.grants, empty="(no live grants)")
    ctx.emit(f"{summary}\n\nGrants:\n{grants}\n\nPolicy:\n{output.policy_text(access.policy)}")


def audit(ctx: Context, args: argparse.Namespace) -> None:
    if args.follow:
        _follow(ctx, args)
        return
    listed = ctx.client.audit(
        instance_id=args.instance, grant_id=args.grant, account=args.account, region=args.region
    )
    events = [e for e in listed if args.after is None or e.event_id > args.after]
    ctx.emit_json({"events": events}) if ctx.json else ctx.emit(output.events_table(events))


def _follow(ctx: Context, args: argparse.Namespace) -> None:
    """The trail after --after (from the start by default), then each new event; until ^C."""
    # The stream reconnects by itself whenever the broker is unreachable, so a broker that is
    # not there at all would look like a quiet trail: one ordinary call first says so instead.
    first = ctx.client.audit(
        instance_id=args.instance, grant_id=args.grant, account=args.account, region=args.region
    )
    next(first, None)
    if not ctx.json:
        ctx.emit(output.follow_header())
    for event in _watched(ctx, args):
        ctx.emit_json(event, lines=True) if ctx.json else ctx.emit(output.event_line(event))


def _watched(ctx: Context, args: argparse.Namespace) -> Iterator[AuditEvent]:
    after = 0 if args.after is None else args.after
    watched = ctx.client.watch(
        after=after, instance_id=args.instance, account=args.account, region=args.region
    )
    for event in watched:
        if not args.grant or event.grant_id == args.grant:
            yield event


def wait(ctx: Context, args: argparse.Namespace) -> None:
    settled = ctx.client.wait(args.grant_id, args.state, timeout=args.timeout)
    ctx.emit_json(settled) if ctx.json else ctx.emit(output.grant_details(settled))


def drift(ctx: Context, args: argparse.Namespace) -> None:
    found = ctx.client.reconcile(
        args.instance, dry_run=not args.repair, account=args.account, region=args.region
    )
    if ctx.json:
        ctx.emit_json({"repair": args.repair, "drifts": found})
        return
    ctx.emit(output.drift_table(found, repairing=args.repair))


def webhooks(ctx: Context, args: argparse.Namespace) -> None:
    destinations = ctx.client.notification_destinations()
    if ctx.json:
        ctx.emit_json({"destinations": destinations})
    else:
        ctx.emit(output.destinations_table(destinations))


def can(ctx: Context, args: argparse.Namespace) -> None:
    ttl = _ttl(args.ttl) if args.ttl else None
    decision = ctx.client.explain_access(
        args.identity,
        args.instance,
        args.bucket,
        args.access,
        prefix=args.prefix,
        ttl=ttl,
        account=args.account,
        region=args.region,
    )
    ctx.emit_json(decision) if ctx.json else ctx.emit(output.decision_details(decision))
    if not decision.allowed:
        where = output.location(args.bucket, args.prefix)
        raise CommandFailed(
            f"{args.identity} may not have {args.access} on {where}: {decision.reason}", DENIED
        )
