"""The handler that takes access away: revoke a grant.

It moves the grant to REVOKING; the pipeline's settle step records that and converges the
instance without it, which, for its last grant, tears everything down. A request still
awaiting approval is withdrawn: REVOKED at once, with nothing in AWS to undo.
"""

from broker.domain.access import GrantState
from broker.domain.audit import AuditAction, grant_event
from broker.domain.errors import GrantNotFound, WrongState
from broker.service.commands import RevokeAccess
from broker.service.convergence import Intent
from broker.service.messagebus import Context
from broker.service.ports import Clock, UnitOfWorkFactory


def revoke_access(
    command: RevokeAccess, context: Context, *, uow: UnitOfWorkFactory, clock: Clock
) -> Intent:
    # Read again under the instance's lock, which authorization did not hold.
    with uow(read_only=True) as unit:
        grant = unit.grants.get(command.grant_id)
    if grant is None:
        raise GrantNotFound(command.grant_id)
    if grant.state in (GrantState.FAILED, GrantState.EXPIRED, GrantState.DENIED):
        raise WrongState(grant.grant_id, grant.state.value, "there is nothing to revoke")
    now = clock.now()
    if grant.state is GrantState.AWAITING_APPROVAL:
        withdrawn = grant.moved_to(GrantState.REVOKED, now, failure_reason="withdrawn")
        event = grant_event(
            now, command.actor, AuditAction.GRANT_REVOKED, withdrawn, reason=command.reason
        )
        return Intent(withdrawn, changed=True, events=(event,))
    if not grant.state.is_desired:
        return Intent(grant)  # revoking or revoked already: only settling is left
    revoking = grant.moved_to(GrantState.REVOKING, now)
    requested = grant_event(
        now, command.actor, AuditAction.GRANT_REVOKE_REQUESTED, revoking, reason=command.reason
    )
    return Intent(revoking, changed=True, events=(requested,))
