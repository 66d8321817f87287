"""The background sweep's chores: end expired grants, finish every convergence that was
interrupted or postponed, and remove what the broker created in AWS that no grant needs.
(Repairing drift is drift.py's.) Each instance is tried on its own: one that fails now is
tried again by the next sweep, and the others are done meanwhile.
"""

import logging

from broker.domain.audit import orphan_event
from broker.domain.errors import BrokerError
from broker.service.commands import ExpireGrants, FinishSettling, OrphanSweep, RemoveOrphans
from broker.service.convergence import Convergence
from broker.service.messagebus import Context
from broker.service.ports import Clock, Iam, InstanceLocks, UnitOfWorkFactory

log = logging.getLogger(__name__)


def expire_grants(
    command: ExpireGrants,
    context: Context,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    convergence: Convergence,
) -> list[str]:
    """Converges each instance with a pending or active grant past its expiry.

    Convergence leaves such grants out of the policy (tearing everything down when none is
    left) and only then moves them to EXPIRED, audited by the system; so a convergence that
    fails leaves them found here again by the next sweep, never EXPIRED with access still in
    AWS. Answers the instances that could not be converged yet.
    """
    with uow(read_only=True) as unit:
        instances = sorted({g.instance_id for g in unit.grants.expired(clock.now())})
    return _converge_each(convergence, instances, command.actor, "end the expired grants of")


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
    unfinished = []
    for instance_id in instances:
        try:
            convergence.converge(instance_id, actor)
        except BrokerError as error:
            log.warning("could not %s %s yet: %s", doing, instance_id, error)
            unfinished.append(instance_id)
    return unfinished


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
    sweep = OrphanSweep(removed=[], unfinished=[])
    for instance_id in sorted(iam.managed_instance_ids(role_path)):
        if _needed(uow, instance_id):
            continue
        try:
            # Under the instance's lock, so that a grant recorded meanwhile is seen (convergence
            # would then build it up instead, which is as right); the lock is re-entrant.
            with locks.hold(instance_id):
                if _needed(uow, instance_id):
                    continue
                log.info("removing the resources of %s, which no grant needs", instance_id)
                with uow() as unit:
                    unit.audit.append(orphan_event(clock.now(), instance_id))
                    unit.commit()
                convergence.converge(instance_id, command.actor)
            sweep.removed.append(instance_id)
        except BrokerError as error:
            log.warning("could not remove the orphaned resources of %s yet: %s", instance_id, error)
            sweep.unfinished.append(instance_id)
    return sweep


def _needed(uow: UnitOfWorkFactory, instance_id: str) -> bool:
    """Whether a grant of the instance is pending, active or revoking."""
    with uow(read_only=True) as unit:
        return bool(unit.grants.for_instance(instance_id))
