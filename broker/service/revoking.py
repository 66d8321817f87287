"""The handler that takes access away: revoke a grant.

It moves the grant to REVOKING; the pipeline's settle step records that and converges the
instance without it, which, for its last grant, tears everything down.
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
    if grant.state in (GrantState.FAILED, GrantState.EXPIRED):
        raise WrongState(grant.grant_id, grant.state.value, "there is nothing to revoke")
    if not grant.state.is_desired:
        return Intent(grant)  # revoking or revoked already: only settling is left
    now = clock.now()
    revoking = grant.moved_to(GrantState.REVOKING, now)
    requested = grant_event(
        now, command.actor, AuditAction.GRANT_REVOKE_REQUESTED, revoking, reason=command.reason
    )
    return Intent(revoking, changed=True, events=(requested,))
