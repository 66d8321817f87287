"""Handlers that give access: grant it, and make a live grant last longer.

GrantAccess decides what granting means here and returns it as an Intent, which the
pipeline's settle step records and converges: the identical live grant is extended (never
shortened), a broader live grant that covers the request is pointed at, or a new grant is
requested. Only grants the caller may act on count: another caller's grant could be revoked
under it (and it could not even see it). When the rule that allows the request asks for
approval, a live grant counts only if it already lasts as long (extending it would bypass the
approvers), the caller's identical request still waiting is the answer, and otherwise a new
request is recorded, awaiting approval, with nothing for AWS.
"""

from dataclasses import replace
from datetime import datetime, timedelta

from broker.domain.access import GrantState
from broker.domain.audit import AuditAction, extension_event, grant_event
from broker.domain.coverage import covering_grant
from broker.domain.errors import GrantNotFound, PermissionDenied, WrongState
from broker.domain.grants import (
    Grant,
    GrantRequest,
    awaiting_approval,
    expiry_after,
    later_expiry,
    new_grant,
)
from broker.domain.places import PlaceFilter
from broker.service.authorization import Permit
from broker.service.commands import MAX_PAGE_SIZE, ExtendGrant, GrantAccess
from broker.service.convergence import Intent
from broker.service.messagebus import Context
from broker.service.ports import Clock, GrantFilter, IdGenerator, UnitOfWork, UnitOfWorkFactory


def grant_access(
    command: GrantAccess,
    context: Context,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    ids: IdGenerator,
    approval_timeout: timedelta,
) -> Intent:
    permit = context.permit
    request, now = permit.the_request(), clock.now()
    expires_at = expiry_after(now, request.ttl)
    with uow(read_only=True) as unit:
        instance_grants = tuple(unit.grants.for_instance(request.instance))
        waiting = _waiting_request(unit, request) if permit.approval else None
    live = [g for g in instance_grants if permit.may_act_on(g)]
    existing = next((g for g in live if g.scope == request.scope and g.is_live(now)), None)
    if existing is not None and (permit.approval is None or _lasts(existing, expires_at)):
        return replace(
            _extended(existing, expires_at, now, command.actor), read_grants=instance_grants
        )
    coverer = covering_grant(live, request.scope, expires_at, now)
    if coverer is not None:
        return Intent(coverer, covered_by=coverer.grant_id, read_grants=instance_grants)
    if waiting is not None:
        return Intent(waiting, read_grants=instance_grants)
    # A dry run's grant is only shown: it gets no id, and uses none up.
    grant_id = "" if command.dry_run else ids.new_grant_id()
    if permit.approval is not None:
        return _approval_requested(grant_id, request, permit, now, approval_timeout)
    grant = new_grant(grant_id, request, now)
    requested = grant_event(
        now, command.actor, AuditAction.GRANT_REQUESTED, grant, authorization=permit.reason
    )
    return Intent(grant, new=True, events=(requested,))


def _approval_requested(
    grant_id: str, request: GrantRequest, permit: Permit, now: datetime, timeout: timedelta
) -> Intent:
    assert permit.approval is not None, "only a request that needs approval awaits it"
    grant = awaiting_approval(grant_id, request, permit.approval, now, timeout)
    approval = grant.the_approval()
    if not approval.reachable_by(request.requested_by):
        raise PermissionDenied(
            f"this request could never be approved: it needs {approval.required} approvers "
            f"of {', '.join(approval.approvers)} other than its requester"
        )
    requested = grant_event(
        now,
        permit.actor,
        AuditAction.GRANT_APPROVAL_REQUESTED,
        grant,
        authorization=permit.reason,
        approvers=list(approval.approvers),
        required=approval.required,
        request_reason=request.reason,
        answer_by=grant.expires_at.isoformat() if grant.expires_at else None,
    )
    return Intent(grant, new=True, events=(requested,))


def _waiting_request(unit: UnitOfWork, request: GrantRequest) -> Grant | None:
    """The caller's identical request still awaiting approval, if any: asking again is not a
    second request."""
    where = GrantFilter(
        instance_id=request.instance_id,
        places=PlaceFilter(request.place.account, request.place.region),
        state=GrantState.AWAITING_APPROVAL,
        requested_by=request.requested_by,
    )
    waiting = unit.grants.list(where, None, MAX_PAGE_SIZE).items
    same = (g for g in waiting if g.scope == request.scope and g.the_approval().ttl == request.ttl)
    return next(same, None)


def _lasts(grant: Grant, expires_at: datetime | None) -> bool:
    """Whether `grant` already lasts until `expires_at` (None: forever)."""
    return later_expiry(grant.expires_at, expires_at) == grant.expires_at


def _extended(grant: Grant, expires_at: datetime | None, now: datetime, actor: str) -> Intent:
    """The identical grant, expiring at the later of the two expiries, audited if it moved."""
    extended = grant.extended_to(expires_at, now)
    if extended.expires_at == grant.expires_at:
        return Intent(grant)
    return Intent(extended, changed=True, events=(extension_event(now, actor, grant, extended),))


def extend_grant(
    command: ExtendGrant, context: Context, *, uow: UnitOfWorkFactory, clock: Clock
) -> Grant:
    """`expires_at = max(expires_at, now + ttl)`: repeating it (a retry) never extends beyond
    `ttl` from the last attempt, and never shortens anything. Only the database changes: the
    expiry decides when the sweep withdraws the grant, not what AWS holds now. The pipeline
    holds the instance's lock, so the sweep's expiry of this grant either happens first (and
    the extension is refused) or sees the extension."""
    with uow() as unit:
        grant = unit.grants.get(command.grant_id)
        if grant is None:
            raise GrantNotFound(command.grant_id)
        now = clock.now()
        if not grant.is_live(now):
            state = "expired" if grant.state.is_desired else grant.state.value
            raise WrongState(grant.grant_id, state, "only a pending or active grant is extended")
        extended = grant.extended_to(now + command.extension, now)
        if extended.expires_at == grant.expires_at:
            return grant
        unit.grants.save(extended)
        unit.audit.append(extension_event(now, command.actor, grant, extended, command.reason))
        unit.commit()
    return extended
