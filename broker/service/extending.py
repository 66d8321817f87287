"""extend_grant: move a live grant's expiry later, within the server's maximum.

Only the database changes: the expiry decides when the sweep withdraws the grant, not what AWS
holds now. An extension is `expires_at = max(expires_at, now + ttl)`, so repeating it (a retry)
never extends beyond `ttl` from the last attempt, and never shortens anything.
"""

from dataclasses import dataclass
from datetime import timedelta

from broker.domain.audit import ANONYMOUS_ACTOR, extension_event
from broker.domain.errors import FieldViolation, GrantNotFound, InvalidRequest, WrongState
from broker.domain.grants import Grant
from broker.domain.validation import (
    MAX_REASON_CHARS,
    free_text_problems,
    grant_id_problems,
    require,
    ttl_problems,
)
from broker.service.authorization import authorize_extension
from broker.service.dependencies import Dependencies
from broker.service.queries import get_grant

_TTL_REQUIRED = "must be set: how long from now the grant should last"


@dataclass(frozen=True)
class ExtendCommand:
    grant_id: str
    ttl: timedelta | None
    reason: str = ""
    actor: str = ANONYMOUS_ACTOR


def extend_grant(deps: Dependencies, command: ExtendCommand) -> Grant:
    require(
        {
            "grant_id": grant_id_problems(command.grant_id),
            "ttl": _ttl_problems(deps, command.ttl),
            "reason": free_text_problems(command.reason, MAX_REASON_CHARS),
        }
    )
    if command.ttl is None:  # reported above already; this narrows the type, and survives -O
        raise InvalidRequest([FieldViolation("ttl", _TTL_REQUIRED)])
    grant = get_grant(deps, command.grant_id)
    authorize_extension(deps, command.actor, grant, command.ttl)
    # Under the instance's lock: the sweep's expiry of this grant either happens first (and the
    # extension is refused) or sees the extension.
    with deps.locks.hold(grant.instance_id), deps.uow() as uow:
        current = uow.grants.get(command.grant_id)
        if current is None:
            raise GrantNotFound(command.grant_id)
        grant, now = current, deps.clock.now()
        if not grant.is_live(now):
            state = "expired" if grant.state.is_desired else grant.state.value
            raise WrongState(grant.grant_id, state, "only a pending or active grant is extended")
        extended = grant.extended_to(now + command.ttl, now)
        if extended.expires_at == grant.expires_at:
            return grant
        uow.grants.save(extended)
        uow.audit.append(
            extension_event(deps.clock.now(), command.actor, grant, extended, command.reason)
        )
        uow.commit()
    return extended


def _ttl_problems(deps: Dependencies, ttl: timedelta | None) -> list[str]:
    return [_TTL_REQUIRED] if ttl is None else ttl_problems(ttl, deps.limits.max_ttl)
