"""The reconciler: finish every convergence that was interrupted or postponed, and remove what
the broker created in AWS that no grant needs any more."""

import logging
from dataclasses import dataclass, field

from broker.domain.audit import SYSTEM_ACTOR, orphan_event
from broker.domain.errors import BrokerError
from broker.service.convergence import converge_instance
from broker.service.dependencies import Dependencies

log = logging.getLogger(__name__)


def reconcile_settling(deps: Dependencies) -> list[str]:
    """Converges each instance that still has a pending or revoking grant.

    Returns the instances that could not be finished yet; their grants keep the reason, and
    the next sweep tries again.
    """
    with deps.uow() as uow:
        instances = uow.grants.settling_instances()
    unfinished = []
    for instance_id in instances:
        try:
            converge_instance(deps, instance_id, SYSTEM_ACTOR)
        except BrokerError as error:
            log.warning("could not finish %s yet: %s", instance_id, error)
            unfinished.append(instance_id)
    return unfinished


def expire_grants(deps: Dependencies) -> list[str]:
    """Converges each instance with a pending or active grant past its expiry.

    Convergence leaves such grants out of the policy (tearing everything down when none is
    left) and only then moves them to EXPIRED, audited by the system; so a convergence that
    fails leaves them found here again by the next sweep, never EXPIRED with access still in
    AWS. Returns the instances that could not be converged yet.
    """
    with deps.uow() as uow:
        instances = sorted({g.instance_id for g in uow.grants.expired(deps.clock.now())})
    unfinished = []
    for instance_id in instances:
        try:
            converge_instance(deps, instance_id, SYSTEM_ACTOR)
        except BrokerError as error:
            log.warning("could not end the expired grants of %s yet: %s", instance_id, error)
            unfinished.append(instance_id)
    return unfinished


@dataclass
class OrphanSweep:
    removed: list[str] = field(default_factory=list)
    # Could not be torn down yet (AWS unavailable, say); the next pass tries again.
    unfinished: list[str] = field(default_factory=list)


def remove_orphans(deps: Dependencies) -> OrphanSweep:
    """Tears down the role and profile of every instance that has them but no live grant.

    Only what the broker created is considered: names of its form, on its role path, with its
    tags (the Iam port checks all three). A half-created role left by a crash, or resources whose
    teardown failed for good, end here. Each teardown is audited by the system actor.
    """
    candidates = deps.iam.managed_instance_ids(deps.role_path)
    sweep = OrphanSweep()
    for instance_id in sorted(candidates):
        if _needed(deps, instance_id):
            continue
        try:
            if _remove(deps, instance_id):
                sweep.removed.append(instance_id)
        except BrokerError as error:
            log.warning("could not remove the orphaned resources of %s yet: %s", instance_id, error)
            sweep.unfinished.append(instance_id)
    return sweep


def _needed(deps: Dependencies, instance_id: str) -> bool:
    """Whether a grant of the instance is pending, active or revoking."""
    with deps.uow() as uow:
        return bool(uow.grants.for_instance(instance_id))


def _remove(deps: Dependencies, instance_id: str) -> bool:
    # Under the instance's lock, so that a grant recorded meanwhile is seen (convergence would
    # then build it up instead, which is as right); the lock is re-entrant.
    with deps.locks.hold(instance_id):
        if _needed(deps, instance_id):
            return False
        log.info("removing the resources of %s, which no grant needs", instance_id)
        with deps.uow() as uow:
            uow.audit.append(orphan_event(deps.clock.now(), instance_id))
            uow.commit()
        converge_instance(deps, instance_id, SYSTEM_ACTOR)
    return True
