"""explain_access: what the access policy decides for a caller's grant, and why (admins only)."""

from dataclasses import dataclass
from datetime import timedelta

from broker.domain.access import Access
from broker.domain.audit import ANONYMOUS_ACTOR, AuditAction
from broker.domain.authorization import Decision, identity_problems
from broker.domain.errors import FieldViolation, InstanceNotFound, InvalidRequest
from broker.domain.validation import validate_grant_request
from broker.service.authorization import decide_for, require_admin
from broker.service.dependencies import Dependencies


@dataclass(frozen=True)
class ExplainCommand:
    """Would `identity` be allowed this grant? Asked by `actor`."""

    identity: str
    instance_id: str
    bucket: str
    access: Access | None
    prefix: str = ""
    ttl: timedelta | None = None
    actor: str = ANONYMOUS_ACTOR


def explain_access(deps: Dependencies, command: ExplainCommand) -> Decision:
    """The decision GrantAccess would make for `identity` now, with the policy in force."""
    require_admin(deps, command.actor, AuditAction.EXPLAIN_DENIED, "explain access decisions")
    unknown_identity = [
        FieldViolation("identity", problem) for problem in identity_problems(command.identity)
    ]
    try:
        request = validate_grant_request(
            instance_id=command.instance_id,
            bucket=command.bucket,
            prefix=command.prefix,
            access=command.access,
            ttl=command.ttl,
            reason="",
            requested_by=command.identity,
            max_ttl=deps.limits.max_ttl,
        )
    except InvalidRequest as invalid:
        raise InvalidRequest([*unknown_identity, *invalid.violations]) from None
    if unknown_identity:
        raise InvalidRequest(unknown_identity)
    if deps.ec2.find_instance(command.instance_id) is None:
        raise InstanceNotFound(command.instance_id)
    return decide_for(deps, command.identity, command.instance_id, request.scope, command.ttl)
