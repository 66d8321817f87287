"""Authorization in the use cases: the access policy in force, who may act on which grant, and
refusals that enter the audit trail before they reach the caller."""

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import NoReturn

from broker.domain.audit import AuditAction, refusal_event
from broker.domain.authorization import AccessPolicy, AccessRequest, Decision, decide
from broker.domain.errors import InstanceNotFound, PermissionDenied
from broker.domain.grants import Grant, GrantRequest, GrantScope
from broker.service.dependencies import Dependencies


@dataclass(frozen=True)
class AuthorizedGrant:
    """A grant request the policy allows, with the ttl the policy gives it."""

    request: GrantRequest
    # What allowed it, for the audit trail: "allowed by rule 2", "… is an admin".
    reason: str
    policy: AccessPolicy
    actor: str

    def may_act_on(self, grant: Grant) -> bool:
        return self.policy.may_act_on(self.actor, grant.requested_by)


def authorize_grant(
    deps: Dependencies, actor: str, request: GrantRequest, asked_ttl: timedelta | None
) -> AuthorizedGrant:
    """Raises PermissionDenied saying why when the policy refuses (the caller audits it)."""
    policy = deps.access_policy.current()
    decision = _decide(
        deps,
        policy,
        identity=actor,
        instance_id=request.instance_id,
        scope=request.scope,
        ttl=asked_ttl,
    )
    if not decision.allowed:
        raise PermissionDenied(decision.reason)
    return AuthorizedGrant(replace(request, ttl=decision.ttl), decision.reason, policy, actor)


def authorize_extension(deps: Dependencies, actor: str, grant: Grant, ttl: timedelta) -> None:
    """Its owner (or an admin) may extend a grant, by no more than the policy allows now."""
    policy = deps.access_policy.current()
    _require_owner(deps, policy, actor, grant, "extend")
    decision = _decide(
        deps, policy, identity=actor, instance_id=grant.instance_id, scope=grant.scope, ttl=ttl
    )
    if not decision.allowed:
        refuse(deps, actor, AuditAction.GRANT_EXTEND_DENIED, decision.reason, grant=grant)


# What refusing each verb on another caller's grant is audited as.
_OWNER_REFUSALS = {
    "read": AuditAction.GRANT_READ_DENIED,
    "extend": AuditAction.GRANT_EXTEND_DENIED,
    "revoke": AuditAction.GRANT_REVOKE_DENIED,
}


def require_owner(deps: Dependencies, actor: str, grant: Grant, verb: str) -> None:
    """Only the caller that requested a grant, or an admin, may `verb` it."""
    _require_owner(deps, deps.access_policy.current(), actor, grant, verb)


def _require_owner(
    deps: Dependencies, policy: AccessPolicy, actor: str, grant: Grant, verb: str
) -> None:
    if policy.may_act_on(actor, grant.requested_by):
        return
    refuse(
        deps,
        actor,
        _OWNER_REFUSALS[verb],
        f"grant {grant.grant_id} was requested by another caller; only it or an admin may "
        f"{verb} it",
        grant=grant,
    )


def require_admin(deps: Dependencies, actor: str, action: AuditAction, what: str) -> None:
    """Refuses, audited as `action`, unless the caller is an admin."""
    if not deps.access_policy.current().is_admin(actor):
        refuse(deps, actor, action, f"only an admin may {what}")


def refuse(
    deps: Dependencies,
    actor: str,
    action: AuditAction,
    reason: str,
    *,
    grant: Grant | None = None,
) -> NoReturn:
    """Audits the refusal (outcome DENIED), then raises PermissionDenied with the reason."""
    event = refusal_event(
        deps.clock.now(),
        actor,
        action,
        reason,
        instance_id=grant.instance_id if grant else "",
        grant_id=grant.grant_id if grant else "",
    )
    with deps.uow() as uow:
        uow.audit.append(event)
        uow.commit()
    raise PermissionDenied(reason)


def decide_for(
    deps: Dependencies, identity: str, instance_id: str, scope: GrantScope, ttl: timedelta | None
) -> Decision:
    """The policy's decision on `identity` having `scope` on the instance (for explaining)."""
    policy = deps.access_policy.current()
    return _decide(deps, policy, identity=identity, instance_id=instance_id, scope=scope, ttl=ttl)


def _decide(
    deps: Dependencies,
    policy: AccessPolicy,
    *,
    identity: str,
    instance_id: str,
    scope: GrantScope,
    ttl: timedelta | None,
) -> Decision:
    request = AccessRequest(
        identity=identity,
        scope=scope,
        tags=_tags(deps, policy, identity, instance_id),
        ttl=ttl,
        default_ttl=deps.limits.ttl_for(None),
    )
    return decide(policy, request)


def _tags(
    deps: Dependencies, policy: AccessPolicy, identity: str, instance_id: str
) -> dict[str, str]:
    """The instance's tags, asked of EC2 only when a rule could need them."""
    if not policy.reads_instance_tags or policy.is_admin(identity):
        return {}
    instance = deps.ec2.find_instance(instance_id)
    if instance is None:
        raise InstanceNotFound(instance_id)
    return instance.tags
