"""`plan` and `apply`: make the broker's grants of the listed instances match a request file."""

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accessbroker import errors
from accessbroker.cli import output
from accessbroker.cli.commands import Context
from accessbroker.cli.failures import CommandFailed, UsageError, violation_texts
from accessbroker.cli.plan import (
    LIVE_STATES,
    REVOKE_REASON,
    Plan,
    grant_key,
    make_plan,
    revoke_key,
)
from accessbroker.cli.requestfile import DesiredGrant, RequestFile, load_request_file
from accessbroker.client import BrokerClient
from accessbroker.models import Grant, GrantResult

# What the broker always calls its own account, whatever its accounts file names it.
HOME_ACCOUNT = "home"

# Each generation of an entry's key is tried once; more than a few means something is wrong.
MAX_KEY_GENERATIONS = 20


def plan(ctx: Context, args: argparse.Namespace) -> None:
    request, grants = _read(ctx.client, args.file)
    planned = make_plan(request, grants)
    # A dry run per new grant checks it with the broker (bucket, instance, profile) and says
    # which AWS changes it needs, without writing anything.
    previews = [_dry_run(ctx.client, desired) for desired in planned.to_grant]
    if ctx.json:
        ctx.emit_json(
            {
                "file": args.file,
                "to_grant": [
                    {**desired_json(d), "planned_changes": p}
                    for d, p in zip(planned.to_grant, previews, strict=True)
                ],
                "to_revoke": planned.to_revoke,
                "unchanged": planned.unchanged,
            }
        )
        return
    ctx.emit(plan_text(planned, args.file))


def apply(ctx: Context, args: argparse.Namespace) -> None:
    """Grants first, then revokes, so that moving a grant never leaves a gap in access.

    Except where a broader grant the file drops covers an entry: the broker answers such an
    entry with the broader grant, so that one is revoked first and the entry granted after it.
    """
    request, grants = _read(ctx.client, args.file)
    planned = make_plan(request, grants)
    known = {g.grant_id for listed in grants.values() for g in listed}
    granted: list[Grant] = []
    revoked: dict[str, Grant] = {}

    def revoke(grant_id: str) -> None:
        revoked[grant_id] = _revoke(ctx.client, grant_id)
        if not ctx.json:
            ctx.emit(f"revoked  {_describe_grant(revoked[grant_id])}")

    dropped = {g.grant_id for g in planned.to_revoke}
    for desired in planned.to_grant:
        granted.append(_grant(ctx.client, desired, known, dropped, revoke))
        if not ctx.json:
            ctx.emit(f"granted  {_describe_grant(granted[-1])}")
    for grant in planned.to_revoke:
        if grant.grant_id not in revoked:
            revoke(grant.grant_id)
    if ctx.json:
        ctx.emit_json(
            {
                "file": args.file,
                "granted": granted,
                "revoked": list(revoked.values()),
                "unchanged": planned.unchanged,
            }
        )
    else:
        ctx.emit(_apply_summary(args.file, granted, list(revoked.values()), planned.unchanged))
    failed = [g for g in granted if g.state not in LIVE_STATES]
    if failed:
        reasons = "; ".join(f"{g.grant_id}: {g.failure_reason or g.state.value}" for g in failed)
        raise CommandFailed(f"{len(failed)} grant(s) did not become active: {reasons}")


def _read(client: BrokerClient, file: str) -> tuple[RequestFile, dict[str, list[Grant]]]:
    """The file, and every grant (in any state) of each instance it lists, where the file says
    the instances live (the broker's own account unless it names another)."""
    request = load_request_file(Path(file))
    account = request.account or HOME_ACCOUNT
    grants = {
        i: list(client.list_grants(instance_id=i, account=account, region=request.region))
        for i in request.instances
    }
    return request, grants


def _send(
    client: BrokerClient, desired: DesiredGrant, *, key: str | None = None, dry_run: bool = False
) -> GrantResult:
    """GrantAccess for one entry of the file."""
    return client.grant(
        desired.instance_id,
        desired.bucket,
        desired.access,
        prefix=desired.prefix,
        ttl=desired.ttl,
        reason=desired.reason,
        idempotency_key=key,
        dry_run=dry_run,
        account=desired.account,
        region=desired.region,
    )


def _dry_run(client: BrokerClient, desired: DesiredGrant) -> list[str]:
    try:
        result = _send(client, desired, dry_run=True)
    except errors.BrokerError as error:
        raise _about(desired, error) from None
    return result.planned_changes


def _grant(
    client: BrokerClient,
    desired: DesiredGrant,
    known: set[str],
    dropped: set[str],
    revoke: Callable[[str], None],
) -> Grant:
    """Grants an entry with its content-derived key, moving on to the key's next generation
    when the key already stands for a grant that has ended (or another caller's request).

    An answer covered by a grant in `dropped` is revoked (by `revoke`) and asked again."""
    for generation in range(MAX_KEY_GENERATIONS):
        try:
            result = _send(client, desired, key=grant_key(desired, generation))
        except errors.AlreadyExists:
            continue
        except errors.BrokerError as error:
            raise _about(desired, error) from None
        if result.covered_by in dropped:
            dropped.discard(result.covered_by)
            revoke(result.covered_by)
            continue
        if result.grant.grant_id in known and result.grant.state not in LIVE_STATES:
            continue
        return result.grant
    raise CommandFailed(
        f"{_describe_desired(desired)}: no usable idempotency key after "
        f"{MAX_KEY_GENERATIONS} tries; grant it with `brokerctl grant` instead"
    )


def _revoke(client: BrokerClient, grant_id: str) -> Grant:
    try:
        return client.revoke(grant_id, reason=REVOKE_REASON, idempotency_key=revoke_key(grant_id))
    except errors.AlreadyExists:
        # Another caller revoked it with the same key: revoking again is harmless.
        return client.revoke(grant_id, reason=REVOKE_REASON)


def _about(desired: DesiredGrant, error: errors.BrokerError) -> Exception:
    """The same error, saying which entry of the file it is about."""
    what = _describe_desired(desired)
    if isinstance(error, errors.InvalidArgument):
        details = violation_texts(error)
        return UsageError(
            f"the broker refused the entry {what} as invalid (INVALID_ARGUMENT); fix it in the "
            f"file and try again{':' if details else f': {error.message}'}",
            details,
        )
    # The same class, reason and metadata: only the words say more, so nothing that tells
    # refusals apart is lost on the way.
    return type(error)(f"{what}: {error.message}", reason=error.reason, metadata=error.metadata)


def desired_json(desired: DesiredGrant) -> dict[str, Any]:
    return {
        "instance_id": desired.instance_id,
        "bucket": desired.bucket,
        "prefix": desired.prefix,
        "access": desired.access.value,
        "ttl_seconds": desired.ttl.total_seconds() if desired.ttl else None,
        "reason": desired.reason,
    }


def plan_text(planned: Plan, file: str) -> str:
    if planned.is_empty:
        return f"No changes: the grants of the instances in {file} match it."
    rows = [
        ["+ grant", d.instance_id, d.access.value, output.location(d.bucket, d.prefix),
         f"ttl {output.ttl_text(d.ttl)}", d.reason]
        for d in planned.to_grant
    ] + [
        ["- revoke", g.instance_id, g.access.value, output.location(g.bucket, g.prefix),
         f"grant {g.grant_id}", g.reason]
        for g in planned.to_revoke
    ]  # fmt: skip
    headers = ("CHANGE", "INSTANCE", "ACCESS", "LOCATION", "DETAIL", "REASON")
    counts = (
        f"{len(planned.to_grant)} to grant, {len(planned.to_revoke)} to revoke, "
        f"{len(planned.unchanged)} unchanged"
    )
    return (
        f"{output.table(headers, rows)}\n\nPlan: {counts}. "
        f"Run `brokerctl apply -f {file}` to make these changes."
    )


def _apply_summary(file: str, granted: list[Grant], revoked: list[Grant], kept: list[Grant]) -> str:
    if not granted and not revoked:
        return f"No changes: the grants of the instances in {file} already match it."
    return f"Applied {file}: {len(granted)} granted, {len(revoked)} revoked, {len(kept)} unchanged."


def _describe_desired(desired: DesiredGrant) -> str:
    where = output.location(desired.bucket, desired.prefix)
    return f"{desired.instance_id}: {desired.access.value} on {where}"


def _describe_grant(grant: Grant) -> str:
    where = output.location(grant.bucket, grant.prefix)
    return f"{grant.instance_id}  {grant.access.value} on {where}  {grant.grant_id} ({grant.state})"
