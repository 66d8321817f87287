"""Handlers that decide requests awaiting approval: approve one, deny one.

Authorization has established that the caller is one of the request's approvers (and not its
requester). An approval is counted once per approver; the last one needed is checked against
the policy in force as it arrives and then makes the request a PENDING grant, which the
pipeline's settle step records and converges as any grant. A denial ends the request.
"""

from datetime import timedelta

from broker.domain.access import GrantState
from broker.domain.approval import Vote
from broker.domain.audit import AuditAction, grant_event
from broker.domain.durations import format_duration
from broker.domain.errors import (
    FieldViolation,
    GrantNotFound,
    InvalidRequest,
    PermissionDenied,
    WrongState,
)
from broker.domain.grants import Grant, GrantRequest
from broker.service.authorization import Authorizer
from broker.service.commands import ApproveGrant, DenyGrant
from broker.service.convergence import Intent
from broker.service.messagebus import Context
from broker.service.ports import Clock, UnitOfWorkFactory


def approve_grant(
    command: ApproveGrant,
    context: Context,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    authorizer: Authorizer,
) -> Intent:
    grant = _current(uow, command.grant_id)
    approval = grant.the_approval()
    if approval.has_voted(command.actor):
        # A repeat, or a retry of an approval that was counted: it changes nothing.
        return Intent(grant, notice=_counted_already(command.actor, grant))
    _check_awaiting(grant, "approved")
    if problem := approval.ttl_problem(command.ttl):
        raise InvalidRequest([FieldViolation("ttl", problem)])
    now = clock.now()
    approved = grant.approved_by(Vote(command.actor, now, command.reason, command.ttl))
    if approved.state is GrantState.PENDING:
        _still_allowed(context, authorizer, approved)
    votes = approved.the_approval().votes
    event = grant_event(
        now,
        command.actor,
        AuditAction.GRANT_APPROVED,
        approved,
        approval=f"{len(votes)} of {approval.required}",
        **_given(reason=command.reason, ttl=command.ttl),
    )
    return Intent(approved, changed=True, events=(event,))


def deny_grant(
    command: DenyGrant, context: Context, *, uow: UnitOfWorkFactory, clock: Clock
) -> Grant:
    """Ends the request DENIED; a retry of the same denial changes nothing."""
    with uow() as unit:
        grant = unit.grants.get(command.grant_id)
        if grant is None:
            raise GrantNotFound(command.grant_id)
        if grant.state is GrantState.DENIED:
            return grant
        _check_awaiting(grant, "denied")
        now = clock.now()
        why = f"denied by {command.actor}" + (f": {command.reason}" if command.reason else "")
        denied = grant.moved_to(GrantState.DENIED, now, failure_reason=why)
        unit.grants.save(denied)
        event = grant_event(
            now, command.actor, AuditAction.GRANT_DENIED, denied, **_given(reason=command.reason)
        )
        unit.audit.append(event)
        unit.commit()
    return denied


def _current(uow: UnitOfWorkFactory, grant_id: str) -> Grant:
    # Read again under the instance's lock, which authorization did not hold.
    with uow(read_only=True) as unit:
        grant = unit.grants.get(grant_id)
    if grant is None:
        raise GrantNotFound(grant_id)
    return grant


def _check_awaiting(grant: Grant, doing: str) -> None:
    if grant.state is not GrantState.AWAITING_APPROVAL:
        raise WrongState(
            grant.grant_id, grant.state.value, f"only a request awaiting approval is {doing}"
        )


def _still_allowed(context: Context, authorizer: Authorizer, approved: Grant) -> None:
    """The last approval is refused if the policy in force now does not allow the request
    (the rule that allowed it was removed or narrowed since)."""
    request = GrantRequest(
        approved.instance_id, approved.scope, None, approved.reason, approved.requested_by
    )
    ttl = approved.the_approval().ttl
    decision = authorizer.decide(context.permit.policy, approved.requested_by, request, ttl)
    if not decision.allowed:
        raise PermissionDenied(
            f"the access policy no longer allows this request: {decision.reason}",
            instance_id=approved.instance_id,
            grant_id=approved.grant_id,
        )


def _counted_already(approver: str, grant: Grant) -> str:
    approval = grant.the_approval()
    return (
        f"{approver} already approved this request; it counts once "
        f"({len(approval.votes)} of {approval.required} approvals)"
    )


def _given(**detail: str | timedelta | None) -> dict[str, str]:
    """The optional particulars that were given, as the audit event's detail holds them."""
    return {
        key: format_duration(value) if isinstance(value, timedelta) else value
        for key, value in detail.items()
        if value
    }
