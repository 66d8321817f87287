"""revoke_access: record the intent to revoke, then converge the instance without the grant."""

from dataclasses import dataclass

from broker.domain.access import GrantState
from broker.domain.audit import ANONYMOUS_ACTOR, AuditAction, grant_event
from broker.domain.errors import GrantNotFound, WrongState
from broker.domain.grants import Grant
from broker.domain.validation import (
    MAX_REASON_CHARS,
    free_text_problems,
    grant_id_problems,
    require,
)
from broker.service.authorization import require_owner
from broker.service.convergence import converge_instance
from broker.service.dependencies import Dependencies
from broker.service.idempotency import earlier_grant_id, fingerprint, key_problems, remember
from broker.service.ports import IdempotencyRecord
from broker.service.queries import get_grant

OPERATION = "revoke"


@dataclass(frozen=True)
class RevokeCommand:
    grant_id: str
    reason: str = ""
    idempotency_key: str = ""
    actor: str = ANONYMOUS_ACTOR


def revoke_access(deps: Dependencies, command: RevokeCommand) -> Grant:
    require(
        {
            "grant_id": grant_id_problems(command.grant_id),
            "reason": free_text_problems(command.reason, MAX_REASON_CHARS),
            "idempotency_key": key_problems(command.idempotency_key),
        }
    )
    grant = get_grant(deps, command.grant_id)
    require_owner(deps, command.actor, grant, "revoke")
    with deps.locks.hold(grant.instance_id):
        _record_intent(deps, command)
        if get_grant(deps, command.grant_id).state is GrantState.REVOKING:
            converge_instance(deps, grant.instance_id, command.actor)
    return get_grant(deps, command.grant_id)


def _record_intent(deps: Dependencies, command: RevokeCommand) -> None:
    """Moves the grant to REVOKING, unless a retry of this revocation finds it done already."""
    digest = fingerprint(grant_id=command.grant_id, reason=command.reason, actor=command.actor)
    with deps.uow() as uow:
        if earlier_grant_id(uow, OPERATION, command.idempotency_key, digest) is not None:
            return
        grant = uow.grants.get(command.grant_id)
        if grant is None:
            raise GrantNotFound(command.grant_id)
        if grant.state in (GrantState.FAILED, GrantState.EXPIRED):
            raise WrongState(grant.grant_id, grant.state.value, "there is nothing to revoke")
        if grant.state.is_desired:
            revoking = grant.moved_to(GrantState.REVOKING, deps.clock.now())
            uow.grants.save(revoking)
            event = grant_event(
                deps.clock.now(),
                command.actor,
                AuditAction.GRANT_REVOKE_REQUESTED,
                revoking,
                reason=command.reason,
            )
            uow.audit.append(event)
        remember(
            uow,
            IdempotencyRecord(
                key=command.idempotency_key,
                operation=OPERATION,
                fingerprint=digest,
                grant_id=command.grant_id,
                created_at=deps.clock.now(),
            ),
        )
        uow.commit()
