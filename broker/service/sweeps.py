"""The background sweep's chores: end expired grants and requests left unanswered, finish every
convergence that was interrupted or postponed, and remove what the broker created in AWS that
no grant needs.
(Repairing drift is drift.py's.) Each instance is tried on its own, several at once: one that
fails now is tried again by the next sweep, and the others are done meanwhile.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from broker.domain.access import GrantState
from broker.domain.accounts import Account
from broker.domain.audit import AuditAction, grant_event, orphan_event
from broker.domain.errors import BrokerError
from broker.domain.places import InstanceRef, Place
from broker.service.commands import (
    ExpireGrants,
    FinishSettling,
    MeasureQuotas,
    OrphanSweep,
    RemoveOrphans,
)
from broker.service.convergence import Convergence
from broker.service.messagebus import Context, admission_lock
from broker.service.ports import (
    AccountsSource,
    AwsAccounts,
    Clock,
    InstanceLocks,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)

# The failure reason of a request that lapsed unanswered.
NOT_APPROVED = "not approved in time"

T = TypeVar("T")

# Instances one chore of the sweep works on at once. Their AWS writes share one budget
# (BROKER_AWS_WRITE_RATE), so more at once finishes sooner without throttling anyone.
SWEEP_CONCURRENCY = 8


def expire_grants(
    command: ExpireGrants,
    context: Context,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    locks: InstanceLocks,
    convergence: Convergence,
) -> list[InstanceRef]:
    """Converges each instance with a pending or active grant past its expiry.

    Convergence leaves such grants out of the policy (tearing everything down when none is
    left) and only then moves them to EXPIRED, audited by the system; so a convergence that
    fails leaves them found here again by the next sweep, never EXPIRED with access still in
    AWS. Answers the instances that could not be converged yet. Requests still awaiting
    approval when their time to be answered is up end EXPIRED too (nothing of them is in AWS).
    """
    with uow(read_only=True) as unit:
        instances = sorted({g.instance for g in unit.grants.expired(clock.now())})
    unfinished = _converge_each(convergence, instances, command.actor, "end the expired grants of")
    lapse_unanswered(uow, clock, locks, command.actor)
    return unfinished


def lapse_unanswered(
    uow: UnitOfWorkFactory, clock: Clock, locks: InstanceLocks, actor: str
) -> None:
    """Ends EXPIRED each request left unanswered past its time, under its instance's admission
    lock: an approval arriving meanwhile is either counted first or refused after."""
    with uow(read_only=True) as unit:
        lapsed = unit.grants.lapsed_requests(clock.now())
    for request in lapsed:
        try:
            with locks.hold(admission_lock(request.instance)):
                _lapse(uow, clock, actor, request.grant_id)
        except BrokerError:  # this one is tried again by the next sweep; the others go on
            log.warning("could not end the lapsed request %s yet", request.grant_id, exc_info=True)


def _lapse(uow: UnitOfWorkFactory, clock: Clock, actor: str, grant_id: str) -> None:
    """Under the instance's admission lock: the request, if still waiting, ends EXPIRED."""
    with uow() as unit:
        grant, now = unit.grants.get(grant_id), clock.now()
        if grant is None or grant.state is not GrantState.AWAITING_APPROVAL:
            return  # decided since it was read
        expired = grant.moved_to(GrantState.EXPIRED, now, failure_reason=NOT_APPROVED)
        unit.grants.save(expired)
        unit.audit.append(grant_event(now, actor, AuditAction.GRANT_APPROVAL_EXPIRED, expired))
        unit.commit()


def finish_settling(
    command: FinishSettling,
    context: Context,
    *,
    uow: UnitOfWorkFactory,
    convergence: Convergence,
) -> list[InstanceRef]:
    """Converges each instance that still has a pending or revoking grant; answers those that
    could not be finished yet (their grants keep the reason)."""
    with uow(read_only=True) as unit:
        instances = unit.grants.settling_instances()
    return _converge_each(convergence, instances, command.actor, "finish")


def _converge_each(
    convergence: Convergence, instances: list[InstanceRef], actor: str, doing: str
) -> list[InstanceRef]:
    _, unfinished = each_concurrently(
        instances, lambda instance: convergence.converge(instance, actor), doing
    )
    return unfinished


def each_concurrently(
    instances: list[InstanceRef], work: Callable[[InstanceRef], T], doing: str
) -> tuple[list[T], list[InstanceRef]]:
    """Does `work` for each instance, SWEEP_CONCURRENCY at a time: what it answered for those
    it could be done for, and the instances it could not be done for yet (logged, for the next
    sweep to try again)."""
    if not instances:
        return [], []

    def tried(instance: InstanceRef) -> tuple[T] | None:
        try:
            return (work(instance),)
        except BrokerError as error:
            log.warning("could not %s %s yet: %s", doing, instance, error)
            return None

    workers = min(SWEEP_CONCURRENCY, len(instances))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
        outcomes = list(pool.map(tried, instances))
    done = [outcome[0] for outcome in outcomes if outcome is not None]
    failed = [i for i, outcome in zip(instances, outcomes, strict=True) if outcome is None]
    return done, failed


def remove_orphans(
    command: RemoveOrphans,
    context: Context,
    *,
    uow: UnitOfWorkFactory,
    aws: AwsAccounts,
    accounts: AccountsSource,
    clock: Clock,
    locks: InstanceLocks,
    convergence: Convergence,
    role_path: str,
) -> OrphanSweep:
    """Tears down the role and profile of every instance that has them but no live grant, in
    every configured account (an account that cannot be reached now is left for the next pass).

    Only what the broker created is considered: names of its form, on its role path, with its
    tags (the Iam port checks all three). A half-created role left by a crash, or resources
    whose teardown failed for good, end here. Each teardown is audited by the system actor.
    """
    with uow(read_only=True) as unit:
        live = {(i.place.account, i.instance_id) for i in unit.grants.live_instances()}
    served = accounts.current()
    orphans = [
        instance
        for account in served.all
        for instance in _managed_in(aws, account, role_path)
        if (account.key, instance.instance_id) not in live
    ]

    def remove(instance: InstanceRef) -> InstanceRef | None:
        """The instance, once its resources are gone; None when a grant needs them after all."""
        # Under the instance's lock, so that a grant recorded meanwhile is seen (convergence
        # would then build it up instead, which is as right); the lock is re-entrant.
        with locks.hold(instance.key):
            if _needed(uow, served.account_of(instance.place), instance.instance_id):
                return None
            log.info("removing the resources of %s, which no grant needs", instance)
            with uow() as unit:
                unit.audit.append(orphan_event(clock.now(), instance))
                unit.commit()
            convergence.converge(instance, command.actor)
        return instance

    removed, unfinished = each_concurrently(orphans, remove, "remove the orphaned resources of")
    return OrphanSweep(removed=[i for i in removed if i], unfinished=unfinished)


def measure_quotas(
    command: MeasureQuotas,
    context: Context,
    *,
    aws: AwsAccounts,
    accounts: AccountsSource,
    convergence: Convergence,
) -> list[str]:
    """Reads every configured account's IAM usage, for the metrics and the quota headroom
    check of the admissions that follow; an account that cannot be read now is left out."""
    unread = []
    for account in accounts.current().all:
        try:
            convergence.usages.read(account, aws.iam(account.key))
        except BrokerError as error:
            log.warning("could not read the IAM usage of account %s yet: %s", account.name, error)
            unread.append(account.name)
    return unread


def _managed_in(aws: AwsAccounts, account: Account, role_path: str) -> list[InstanceRef]:
    """The instances whose resources the broker made in the account, where their region tag
    places them (untagged ones, made before regions were, in the account's first region: only
    torn down when no region of the account has a live grant of that id); a region no longer
    configured is left alone."""
    try:
        managed = aws.iam(account.key).managed_instances(role_path)
    except BrokerError as error:
        log.warning("could not look for orphans in account %s yet: %s", account.name, error)
        return []
    found = []
    for instance_id, region in sorted(managed.items()):
        if (region or account.regions[0]) in account.regions:
            found.append(InstanceRef(Place(account.key, region or account.regions[0]), instance_id))
        else:
            log.info("leaving %s alone: its region %s is not configured", instance_id, region)
    return found


def _needed(uow: UnitOfWorkFactory, account: Account, instance_id: str) -> bool:
    """Whether a grant of an instance of that id is pending, active or revoking in any region
    of the account: IAM names are the account's, so the role may be that instance's."""
    with uow(read_only=True) as unit:
        return any(
            unit.grants.for_instance(InstanceRef(place, instance_id)) for place in account.places()
        )
