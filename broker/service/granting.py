"""grant_access: record the intent to grant, then converge the instance to include it."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from broker.domain.access import Access
from broker.domain.audit import (
    ANONYMOUS_ACTOR,
    AuditAction,
    extension_event,
    grant_event,
    refusal_event,
)
from broker.domain.convergence import Step
from broker.domain.coverage import covering_grant
from broker.domain.errors import (
    BrokerError,
    FieldViolation,
    ForeignProfile,
    ForeignRole,
    InstanceNotFound,
    InvalidRequest,
    PermissionDenied,
    PolicyTooLarge,
)
from broker.domain.grants import Grant, GrantRequest, expiry_after, new_grant
from broker.domain.naming import ManagedNames
from broker.domain.policy import PolicyDocument, build_policy, check_size, render
from broker.domain.validation import validate_grant_request
from broker.service.authorization import AuthorizedGrant, authorize_grant
from broker.service.convergence import converge_instance, desired_state, planned_steps
from broker.service.dependencies import Dependencies
from broker.service.idempotency import (
    check_key,
    earlier_grant_id,
    fingerprint,
    key_problems,
    remember,
)
from broker.service.ports import IdempotencyRecord
from broker.service.queries import get_grant

OPERATION = "grant"
# Refusals of a valid request, audited before they reach the caller.
REFUSALS = (InstanceNotFound, ForeignProfile, ForeignRole, PolicyTooLarge)


@dataclass(frozen=True)
class GrantCommand:
    """A grant request as the caller sent it, not yet validated."""

    instance_id: str
    bucket: str
    access: Access | None
    prefix: str = ""
    ttl: timedelta | None = None
    reason: str = ""
    idempotency_key: str = ""
    dry_run: bool = False
    actor: str = ANONYMOUS_ACTOR


@dataclass(frozen=True)
class GrantResult:
    grant: Grant
    policy_document: str
    planned_changes: tuple[str, ...] = ()
    # Set when a broader live grant already gave what was asked: `grant` is that grant.
    covered_by: str = ""


def grant_access(deps: Dependencies, command: GrantCommand) -> GrantResult:
    """Grants, or extends the identical live grant, or reports the broader one covering it;
    first of all, the access policy must allow it (dry runs too: they reveal the policy)."""
    request = _validated(deps, command)
    try:
        authorized = authorize_grant(deps, command.actor, request, asked_ttl=command.ttl)
    except (PermissionDenied, InstanceNotFound) as error:
        _audit_rejection(deps, command, error)
        raise
    with deps.locks.hold(request.instance_id):
        return _grant_locked(deps, command, authorized)


def _validated(deps: Dependencies, command: GrantCommand) -> GrantRequest:
    """The request with the server's default ttl applied, or one InvalidRequest naming every bad
    field, the idempotency key's too."""
    try:
        request = validate_grant_request(
            instance_id=command.instance_id,
            bucket=command.bucket,
            prefix=command.prefix,
            access=command.access,
            ttl=deps.limits.ttl_for(command.ttl),
            reason=command.reason,
            requested_by=command.actor,
            max_ttl=deps.limits.max_ttl,
        )
    except InvalidRequest as invalid:
        bad_key = [
            FieldViolation("idempotency_key", p) for p in key_problems(command.idempotency_key)
        ]
        raise InvalidRequest([*invalid.violations, *bad_key]) from None
    check_key(command.idempotency_key)
    return request


def _grant_locked(
    deps: Dependencies, command: GrantCommand, authorized: AuthorizedGrant
) -> GrantResult:
    request = authorized.request
    digest = fingerprint(
        instance_id=request.instance_id,
        scope=request.scope,
        ttl=request.ttl,
        reason=request.reason,
        actor=command.actor,
    )
    now = deps.clock.now()
    expires_at = expiry_after(now, request.ttl)
    with deps.uow() as uow:
        earlier = earlier_grant_id(uow, OPERATION, command.idempotency_key, digest)
        # Only grants the caller may act on are extended or reported as covering the request:
        # another caller's grant could be revoked under it (and it could not even see it).
        live = [g for g in uow.grants.for_instance(request.instance_id) if authorized.may_act_on(g)]
    existing = next((g for g in live if g.scope == request.scope and g.is_live(now)), None)
    if earlier is not None and not command.dry_run:
        # A retry: the first attempt already extended, or found the coverer; nothing more.
        return _finish(deps, earlier, command.actor)
    if existing is not None:
        if command.dry_run:
            return _preview_existing(deps, existing.extended_to(expires_at, now))
        _extend(deps, command, digest, existing, expires_at)
        return _finish(deps, existing.grant_id, command.actor)
    coverer = covering_grant(live, request.scope, expires_at, now)
    if coverer is not None:
        result = (
            _preview_existing(deps, coverer)
            if command.dry_run
            else _finish(deps, _remember(deps, command, digest, coverer), command.actor)
        )
        return replace(result, covered_by=coverer.grant_id)
    try:
        document, steps = _admit(deps, request)
    except REFUSALS as error:
        _audit_rejection(deps, command, error)
        raise
    if command.dry_run:
        preview = new_grant("", request, deps.clock.now())
        return GrantResult(preview, render(document), tuple(s.describe() for s in steps))
    grant = _record_intent(deps, command, authorized, digest)
    return _finish(deps, grant.grant_id, command.actor)


def _admit(deps: Dependencies, request: GrantRequest) -> tuple[PolicyDocument, list[Step]]:
    """The resulting policy and the steps to reach it; raises, writing nothing, when refused."""
    if deps.ec2.find_instance(request.instance_id) is None:
        raise InstanceNotFound(request.instance_id)
    document = _document_with(deps, request)
    names = ManagedNames(request.instance_id, deps.role_path)
    # Planning refuses a foreign profile or role before anything is written.
    return document, planned_steps(deps, names, document)


def _document_with(deps: Dependencies, request: GrantRequest) -> PolicyDocument:
    """The instance's policy once this grant is added, refused when IAM would not take it."""
    now = deps.clock.now()
    current = desired_state(deps, request.instance_id)
    scopes = [g.scope for g in current.grants if g.is_live(now)]
    document = build_policy([*scopes, request.scope])
    assert document is not None, "a document with at least one grant is never empty"
    check_size(document)
    return document


def _record_intent(
    deps: Dependencies, command: GrantCommand, authorized: AuthorizedGrant, digest: str
) -> Grant:
    grant = new_grant(deps.ids.new_grant_id(), authorized.request, deps.clock.now())
    requested = grant_event(
        deps.clock.now(),
        command.actor,
        AuditAction.GRANT_REQUESTED,
        grant,
        authorization=authorized.reason,
    )
    with deps.uow() as uow:
        uow.grants.add(grant)
        uow.audit.append(requested)
        remember(uow, _key_record(deps, command, digest, grant))
        uow.commit()
    return grant


def _remember(deps: Dependencies, command: GrantCommand, digest: str, grant: Grant) -> str:
    """Binds the caller's idempotency key to `grant`; returns the grant's id."""
    with deps.uow() as uow:
        remember(uow, _key_record(deps, command, digest, grant))
        uow.commit()
    return grant.grant_id


def _extend(
    deps: Dependencies,
    command: GrantCommand,
    digest: str,
    grant: Grant,
    expires_at: datetime | None,
) -> None:
    """Moves the identical grant's expiry to the later of the two (never earlier), audited, and
    binds the idempotency key to it, in one transaction."""
    extended = grant.extended_to(expires_at, deps.clock.now())
    with deps.uow() as uow:
        if extended.expires_at != grant.expires_at:
            uow.grants.save(extended)
            uow.audit.append(extension_event(deps.clock.now(), command.actor, grant, extended))
        remember(uow, _key_record(deps, command, digest, grant))
        uow.commit()


def _key_record(
    deps: Dependencies, command: GrantCommand, digest: str, grant: Grant
) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=command.idempotency_key,
        operation=OPERATION,
        fingerprint=digest,
        grant_id=grant.grant_id,
        created_at=deps.clock.now(),
    )


def _finish(deps: Dependencies, grant_id: str, actor: str) -> GrantResult:
    """Converges if the grant still waits for it, then reports the grant as it stands."""
    grant = get_grant(deps, grant_id)
    if grant.state.is_settling:
        converge_instance(deps, grant.instance_id, actor)
        grant = get_grant(deps, grant_id)
    document = desired_state(deps, grant.instance_id).document
    return GrantResult(grant, render(document) if document else "")


def _preview_existing(deps: Dependencies, grant: Grant) -> GrantResult:
    """A dry run matching a grant: the grant, and the steps its convergence still owes."""
    document = desired_state(deps, grant.instance_id).document
    steps: list[Step] = []
    if grant.state.is_settling:
        names = ManagedNames(grant.instance_id, deps.role_path)
        steps = planned_steps(deps, names, document)
    return GrantResult(
        grant, render(document) if document else "", tuple(s.describe() for s in steps)
    )


def _audit_rejection(deps: Dependencies, command: GrantCommand, error: BrokerError) -> None:
    with deps.uow() as uow:
        uow.audit.append(
            refusal_event(
                deps.clock.now(),
                command.actor,
                AuditAction.GRANT_REJECTED,
                str(error),
                instance_id=command.instance_id,
                bucket=command.bucket,
                prefix=command.prefix,
                access=command.access.value if command.access else "",
            )
        )
        uow.commit()
