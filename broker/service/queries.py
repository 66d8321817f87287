"""Read-only use cases: grants, an instance's access, and the audit trail."""

from dataclasses import dataclass, replace

from broker.domain.audit import AuditAction, AuditEvent
from broker.domain.errors import GrantNotFound, InstanceNotFound
from broker.domain.grants import Grant, InstanceResources
from broker.domain.policy import build_policy, render
from broker.domain.validation import (
    bucket_problems,
    grant_id_problems,
    instance_id_problems,
    require,
)
from broker.service.authorization import require_admin, require_owner
from broker.service.dependencies import Dependencies
from broker.service.ports import AuditFilter, GrantFilter, Page

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class InstanceAccess:
    instance_id: str
    resources: InstanceResources
    policy_document: str
    grants: list[Grant]


def get_grant(deps: Dependencies, grant_id: str) -> Grant:
    require({"grant_id": grant_id_problems(grant_id)})
    with deps.uow() as uow:
        grant = uow.grants.get(grant_id)
    if grant is None:
        raise GrantNotFound(grant_id)
    return grant


def list_grants(
    deps: Dependencies, where: GrantFilter, page_size: int, after: int | None
) -> Page[Grant]:
    require(
        {
            "instance_id": instance_id_problems(where.instance_id) if where.instance_id else [],
            "bucket": bucket_problems(where.bucket) if where.bucket else [],
            "page_size": _page_size_problems(page_size),
        }
    )
    with deps.uow() as uow:
        return uow.grants.list(where, after, page_size or DEFAULT_PAGE_SIZE)


def describe_instance(deps: Dependencies, instance_id: str) -> InstanceAccess:
    require({"instance_id": instance_id_problems(instance_id)})
    with deps.uow() as uow:
        record = uow.instances.get(instance_id)
        grants = [g for g in uow.grants.for_instance(instance_id) if g.state.is_desired]
    if record is None and not grants and deps.ec2.find_instance(instance_id) is None:
        raise InstanceNotFound(instance_id)
    return InstanceAccess(
        instance_id=instance_id,
        resources=record.resources if record else InstanceResources(),
        policy_document=record.policy_document if record else "",
        grants=grants,
    )


def list_audit_events(
    deps: Dependencies, where: AuditFilter, page_size: int, after: int | None
) -> Page[AuditEvent]:
    require(
        {
            "instance_id": instance_id_problems(where.instance_id) if where.instance_id else [],
            "grant_id": grant_id_problems(where.grant_id) if where.grant_id else [],
            "page_size": _page_size_problems(page_size),
        }
    )
    with deps.uow() as uow:
        return uow.audit.list(where, after, page_size or DEFAULT_PAGE_SIZE)


def _page_size_problems(page_size: int) -> list[str]:
    if 0 <= page_size <= MAX_PAGE_SIZE:
        return []
    return [f"must be between 0 (the default, {DEFAULT_PAGE_SIZE}) and {MAX_PAGE_SIZE}"]


# What a caller may read. The functions above serve the broker's own use; these answer callers:
# an admin sees everything, any other caller only the grants it requested.


def get_grant_as(deps: Dependencies, actor: str, grant_id: str) -> Grant:
    grant = get_grant(deps, grant_id)
    require_owner(deps, actor, grant, "read")
    return grant


def list_grants_as(
    deps: Dependencies, actor: str, where: GrantFilter, page_size: int, after: int | None
) -> Page[Grant]:
    if not deps.access_policy.current().is_admin(actor):
        where = replace(where, requested_by=actor)
    return list_grants(deps, where, page_size, after)


def describe_instance_as(deps: Dependencies, actor: str, instance_id: str) -> InstanceAccess:
    """The instance's role, profile and association, and the caller's own live grants. The
    policy document names every grant's bucket and prefix, so it is shown to a caller that is
    not an admin only when it grants exactly the caller's own grants (a grant of another's
    still being revoked, say, keeps it hidden)."""
    access = describe_instance(deps, instance_id)
    if deps.access_policy.current().is_admin(actor):
        return access
    own = [g for g in access.grants if g.requested_by == actor]
    own_policy = build_policy(g.scope for g in own)
    shown = own_policy is not None and render(own_policy) == access.policy_document
    return replace(access, grants=own, policy_document=access.policy_document if shown else "")


def list_audit_events_as(
    deps: Dependencies, actor: str, where: AuditFilter, page_size: int, after: int | None
) -> Page[AuditEvent]:
    """The audit trail names every caller's grants: admins only."""
    require_admin(deps, actor, AuditAction.AUDIT_READ_DENIED, "read the audit trail")
    return list_audit_events(deps, where, page_size, after)
