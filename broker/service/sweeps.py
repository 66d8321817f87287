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
from broker.domain.audit import AuditAction, grant_event, orphan_event
from broker.domain.errors import BrokerError
from broker.service.commands import ExpireGrants, FinishSettling, OrphanSweep, RemoveOrphans
from broker.service.convergence import Convergence
from broker.service.messagebus import Context, admission_lock
from broker.service.ports import Clock, Iam, InstanceLocks, UnitOfWorkFactory

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
) -> list[str]:
    """Converges each instance with a pending or active grant past its expiry.

    Convergence leaves such grants out of the policy (tearing everything down when none is
    left) and only then moves them to EXPIRED, audited by the system; so a convergence that
    fails leaves them found here again by the next sweep, never EXPIRED with access still in
    AWS. Answers the instances that could not be converged yet. Requests still awaiting
    approval when their time to be answered is up end EXPIRED too (nothing of them is in AWS).
    """
    with uow(read_only=True) as unit:
        instances = sorted({g.instance_id for g in unit.grants.expired(clock.now())})
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
            with locks.hold(admission_lock(request.instance_id)):
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
) -> list[str]:
    """Converges each instance that still has a pending or revoking grant; answers those that
    could not be finished yet (their grants keep the reason)."""
    with uow(read_only=True) as unit:
        instances = unit.grants.settling_instances()
    return _converge_each(convergence, instances, command.actor, "finish")


def _converge_each(
    convergence: Convergence, instances: list[str], actor: str, doing: str
) -> list[str]:
    _, unfinished = each_concurrently(
        instances, lambda instance_id: convergence.converge(instance_id, actor), doing
    )
    return unfinished


def each_concurrently(
    instances: list[str], work: Callable[[str], T], doing: str
) -> tuple[list[T], list[str]]:
    """Does `work` for each instance, SWEEP_CONCURRENCY at a time: what it answered for those
    it could be done for, and the instances it could not be done for yet (logged, for the next
    sweep to try again)."""
    if not instances:
        return [], []

    def tried(instance_id: str) -> tuple[T] | None:
        try:
            return (work(instance_id),)
        except BrokerError as error:
            log.warning("could not %s %s yet: %s", doing, instance_id, error)
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
    iam: Iam,
    clock: Clock,
    locks: InstanceLocks,
    convergence: Convergence,
    role_path: str,
) -> OrphanSweep:
    """Tears down the role and profile of every instance that has them but no live grant.

    Only what the broker created is considered: names of its form, on its role path, with its
    tags (the Iam port checks all three). A half-created role left by a crash, or resources
    whose teardown failed for good, end here. Each teardown is audited by the system actor.
    """
    orphans = [i for i in sorted(iam.managed_instance_ids(role_path)) if not _needed(uow, i)]

    def remove(instance_id: str) -> str:
        """The instance, once its resources are gone; "" when a grant needs them after all."""
        # Under the instance's lock, so that a grant recorded meanwhile is seen (convergence
        # would then build it up instead, which is as right); the lock is re-entrant.
        with locks.hold(instance_id):
            if _needed(uow, instance_id):
                return ""
            log.info("removing the resources of %s, which no grant needs", instance_id)
            with uow() as unit:
                unit.audit.append(orphan_event(clock.now(), instance_id))
                unit.commit()
            convergence.converge(instance_id, command.actor)
        return instance_id

    removed, unfinished = each_concurrently(orphans, remove, "remove the orphaned resources of")
    return OrphanSweep(removed=[i for i in removed if i], unfinished=unfinished)


def _needed(uow: UnitOfWorkFactory, instance_id: str) -> bool:
    """Whether a grant of the instance is pending, active or revoking."""
    with uow(read_only=True) as unit:
        return bool(unit.grants.for_instance(instance_id))
