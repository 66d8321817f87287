"""Handlers that decide requests awaiting approval: approve one, deny one.

Authorization has established that the caller is one of the request's approvers as the policy
in force names them (and not its requester). Every approval is decided against that policy:
who counts and how many must are its rule's, and a request it no longer allows is not
approved. An approver counts once; the last approval needed makes the request a PENDING grant,
checked as a new grant is, which the pipeline's settle step records and converges as any grant
(its ttl counting from activation). A denial ends the request; one past its time is neither
approved nor denied.
"""

from datetime import datetime, timedelta

from broker.domain.access import GrantState
from broker.domain.approval import Approval, Vote
from broker.domain.audit import AuditAction, grant_event
from broker.domain.durations import format_duration
from broker.domain.errors import (
    FieldViolation,
    GrantNotFound,
    InvalidRequest,
    PermissionDenied,
    WrongState,
)
from broker.domain.grants import Grant
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
) -> Intent:
    grant, now = _current(uow, command.grant_id), clock.now()
    _check_open(grant, now, "approved")
    approval = grant.the_approval()
    if approval.has_voted(command.actor):
        # A repeat, or a retry of an approval that was counted: it changes nothing.
        return Intent(grant, notice=_counted_already(command.actor, grant))
    _check_awaiting(grant, "approved")
    if problem := approval.ttl_problem(command.ttl):
        raise InvalidRequest([FieldViolation("ttl", problem)])
    current = _as_the_policy_asks(context, grant)
    approved = grant.approved_by(Vote(command.actor, now, command.reason, command.ttl), current)
    counted = approved.the_approval()
    event = grant_event(
        now,
        command.actor,
        AuditAction.GRANT_APPROVED,
        approved,
        approval=f"{len(counted.votes)} of {counted.required}",
        **_given(reason=command.reason, ttl=command.ttl),
    )
    # The last approval adds the grant to the instance's policy: checked first, as a new one.
    admits = approved.state is GrantState.PENDING
    return Intent(approved, changed=True, admits=admits, events=(event,))


def deny_grant(
    command: DenyGrant, context: Context, *, uow: UnitOfWorkFactory, clock: Clock
) -> Grant:
    """Ends the request DENIED; a retry of the same denial changes nothing."""
    with uow() as unit:
        grant = unit.grants.get(command.grant_id)
        if grant is None:
            raise GrantNotFound(command.grant_id)
        now = clock.now()
        if grant.state is GrantState.DENIED:
            return grant
        _check_open(grant, now, "denied")
        _check_awaiting(grant, "denied")
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


def _check_open(grant: Grant, now: datetime, doing: str) -> None:
    """A request that ended, or whose time to be answered is up (the sweep may not have ended
    it yet), is not decided any more."""
    if grant.state.is_final:
        raise WrongState(grant.grant_id, grant.state.value, f"a request that ended is not {doing}")
    if grant.state is GrantState.AWAITING_APPROVAL and grant.has_expired(now):
        raise WrongState(grant.grant_id, "expired", "it was not approved in time")


def _as_the_policy_asks(context: Context, grant: Grant) -> Approval:
    """The request's approval (its votes as read now) as the policy in force asks for it,
    which authorization decided, checking that the caller is one of its approvers; refused
    when no rule allows the request any more."""
    asked = context.permit.asked_now
    if asked is None:
        raise PermissionDenied(
            "the access policy no longer allows this request (its rule was removed or narrowed)",
            instance=grant.instance,
            grant_id=grant.grant_id,
        )
    return grant.the_approval().under(asked)


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
