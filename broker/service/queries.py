"""Read-only use cases: grants, an instance's access, and the audit trail."""

from dataclasses import dataclass

from broker.domain.audit import AuditEvent
from broker.domain.errors import GrantNotFound, InstanceNotFound
from broker.domain.grants import Grant, InstanceResources
from broker.domain.validation import (
    bucket_problems,
    grant_id_problems,
    instance_id_problems,
    require,
)
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
