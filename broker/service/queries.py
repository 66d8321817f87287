"""Handlers that only read: grants, an instance's access, the audit trail (paged or as an endless
feed), and the access policy's decision for someone.

What a caller may read was settled by authorization: an admin sees everything, any other
caller only the grants it requested.
"""

from collections.abc import Callable, Iterator
from dataclasses import replace

from broker.domain.access import GrantState
from broker.domain.audit import AuditEvent
from broker.domain.authorization import Decision
from broker.domain.errors import InstanceNotFound
from broker.domain.grants import Grant, GrantLimits, InstanceResources
from broker.domain.places import InstanceRef
from broker.domain.policy import build_policy, render
from broker.service.authorization import Authorizer
from broker.service.commands import (
    DEFAULT_PAGE_SIZE,
    DescribeInstanceAccess,
    ExplainAccess,
    Feed,
    GetGrant,
    InstanceAccess,
    ListAuditEvents,
    ListGrants,
    WatchAuditEvents,
)
from broker.service.convergence import Convergence
from broker.service.messagebus import Context
from broker.service.ports import AuditFilter, AwsAccounts, GrantFilter, Page, UnitOfWorkFactory

# How many events a feed reads at a time.
FEED_BATCH = 500


def get_grant(command: GetGrant, context: Context) -> Grant:
    return context.permit.the_grant()  # read by authorization, to see whose it is


def list_grants(command: ListGrants, context: Context, *, uow: UnitOfWorkFactory) -> Page[Grant]:
    """The caller's grants (an admin's: everyone's); with awaiting_my_approval, the requests
    the caller may approve and has not yet, whoever asked. Approvers are patterns the database
    cannot match, so such a page holds the requests of one page of waiting ones: it may hold
    fewer than asked for, and still have a next page."""
    mine_to_approve = command.awaiting_my_approval
    where = GrantFilter(
        instance_id=command.instance_id,
        places=command.places,
        bucket=command.bucket,
        state=GrantState.AWAITING_APPROVAL if mine_to_approve else command.state,
        requested_by="" if context.permit.is_admin or mine_to_approve else command.actor,
    )
    with uow(read_only=True) as unit:
        page = unit.grants.list(where, command.after, command.page_size or DEFAULT_PAGE_SIZE)
    if not mine_to_approve:
        return page
    return replace(page, items=[g for g in page.items if _awaits(command.actor, g)])


def _awaits(approver: str, grant: Grant) -> bool:
    """Whether the request waits for `approver`: one it may decide and has not approved."""
    approval = grant.the_approval()
    may = approval.may_decide(approver, grant.requested_by) is None
    return may and not approval.has_voted(approver)


def describe_instance(
    command: DescribeInstanceAccess,
    context: Context,
    *,
    uow: UnitOfWorkFactory,
    aws: AwsAccounts,
    convergence: Convergence,
) -> InstanceAccess:
    """The instance's role, profile and association, and the caller's live grants. The policy
    document names every grant's bucket and prefix, so it is shown to a caller that is not an
    admin only when it grants exactly the caller's own grants (a grant of another's still
    being revoked, say, keeps it hidden)."""
    instance = command.instance
    with uow(read_only=True) as unit:
        record = unit.instances.get(instance)
        grants = [g for g in unit.grants.for_instance(instance) if g.state.is_desired]
    if record is None and not grants and not _exists(aws, instance):
        raise InstanceNotFound(str(instance))
    access = InstanceAccess(
        instance=instance,
        resources=record.resources if record else InstanceResources(),
        policy_document=record.policy_document if record else "",
        grants=grants,
    )
    if context.permit.is_admin:
        return access
    own = [g for g in grants if g.requested_by == command.actor]
    own_policy = build_policy((g.scope for g in own), convergence.binding)
    shown = own_policy is not None and render(own_policy) == access.policy_document
    return replace(access, grants=own, policy_document=access.policy_document if shown else "")


def list_audit_events(
    command: ListAuditEvents, context: Context, *, uow: UnitOfWorkFactory
) -> Page[AuditEvent]:
    where = AuditFilter(
        instance_id=command.instance_id, grant_id=command.grant_id, places=command.places
    )
    with uow(read_only=True) as unit:
        return unit.audit.list(where, command.after, command.page_size or DEFAULT_PAGE_SIZE)


def watch_audit_events(
    command: WatchAuditEvents, context: Context, *, uow: UnitOfWorkFactory
) -> Feed:
    """The events after `after`, or (None) after the newest one: only events yet to come.
    Telling the caller where the feed starts lets it resume without a gap even before its
    first event arrives. The caller must still be allowed at each event: a policy reloaded
    while the feed is open takes effect on it too."""
    if command.after is not None:
        start = command.after
    else:
        with uow(read_only=True) as unit:
            start = unit.audit.last_event_id()

    def follow(idle: Callable[[], bool]) -> Iterator[AuditEvent]:
        where = AuditFilter(instance_id=command.instance_id, places=command.places)
        for event in _feed(uow, where, start, idle):
            context.recheck()
            yield event

    return Feed(start, follow)


def _feed(
    uow: UnitOfWorkFactory, where: AuditFilter, cursor: int, idle: Callable[[], bool]
) -> Iterator[AuditEvent]:
    """The events after event id `cursor`, then each new one. Ids follow commit order (see
    AuditLog.append), so resuming after the last id seen misses nothing and repeats nothing."""
    while True:
        with uow(read_only=True) as unit:
            page = unit.audit.list(where, cursor, FEED_BATCH)
        for event in page.items:
            yield event
            cursor = event.event_id
        if page.next_cursor is None and not idle():
            return


def explain_access(
    command: ExplainAccess,
    context: Context,
    *,
    aws: AwsAccounts,
    authorizer: Authorizer,
    limits: GrantLimits,
) -> Decision:
    """The decision GrantAccess would make for `identity` now, with the policy in force."""
    request = command.request(limits)
    if not _exists(aws, request.instance):
        raise InstanceNotFound(str(request.instance))
    return authorizer.decide(context.permit.policy, command.identity, request, command.ttl)


def _exists(aws: AwsAccounts, instance: InstanceRef) -> bool:
    return aws.ec2(instance.place).find_instance(instance.instance_id) is not None
