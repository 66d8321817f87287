"""reconcile: find drift on broker-managed instances, and (unless a dry run) repair it.

Most drift is repaired by converging, which plans from what AWS holds. Two kinds are not:
a foreign association is the instance owner's choice, so the broker reports it and fails the
grants it can no longer carry; a terminated instance's grants end and its resources go.
"""

import logging
from dataclasses import dataclass

from broker.domain.access import GrantState
from broker.domain.audit import SYSTEM_ACTOR, AuditAction, drift_event, grant_event
from broker.domain.drift import Drift, DriftKind, find_adopted_drift, find_drift
from broker.domain.errors import BrokerError, InstanceNotFound
from broker.domain.naming import ManagedNames
from broker.domain.validation import instance_id_problems, require
from broker.service.adoption import adoption_of
from broker.service.convergence import converge_instance, desired_state, observe
from broker.service.dependencies import Dependencies

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftFinding:
    drift: Drift
    # The broker changed AWS so that this difference is gone.
    repaired: bool


def reconcile(
    deps: Dependencies, instance_id: str, *, dry_run: bool, actor: str
) -> list[DriftFinding]:
    """The drift of one instance, or ("") of every instance with a live grant.

    An instance the broker has no record of is not its business: brokers sharing a role path
    (BROKER_REMOVE_ORPHANS=false) must not tear down each other's resources.
    """
    require({"instance_id": instance_id_problems(instance_id) if instance_id else []})
    with deps.uow() as uow:
        if not instance_id:
            instances = uow.grants.live_instances()
        elif uow.instances.get(instance_id) is None and not uow.grants.for_instance(instance_id):
            return []
        else:
            instances = [instance_id]
    findings = []
    for each in instances:
        findings += reconcile_instance(deps, each, dry_run=dry_run, actor=actor)
    return findings


def repair_drift(deps: Dependencies) -> list[DriftFinding]:
    """The sweep's pass: every instance with a live grant, the system as the actor; an
    instance that cannot be checked now (AWS unavailable, say) is tried again next time."""
    with deps.uow() as uow:
        instances = uow.grants.live_instances()
    findings = []
    for instance_id in instances:
        try:
            findings += reconcile_instance(deps, instance_id, dry_run=False, actor=SYSTEM_ACTOR)
        except BrokerError as error:
            log.warning("could not check %s for drift yet: %s", instance_id, error)
    return findings


def reconcile_instance(
    deps: Dependencies, instance_id: str, *, dry_run: bool, actor: str
) -> list[DriftFinding]:
    if dry_run:
        return [DriftFinding(drift, repaired=False) for drift in detect_drift(deps, instance_id)]
    with deps.locks.hold(instance_id):  # no grant changes the instance between finding and fixing
        drifts = detect_drift(deps, instance_id)
        if not drifts:
            return []
        _audit(deps, actor, AuditAction.DRIFT_DETECTED, drifts)
        repaired = _repair(deps, instance_id, drifts, actor)
    return [DriftFinding(drift, repaired) for drift in drifts]


def detect_drift(deps: Dependencies, instance_id: str) -> list[Drift]:
    names = ManagedNames(instance_id, deps.role_path)
    desired = desired_state(deps, instance_id).document
    observed = observe(deps, names)
    exists = desired is None or deps.ec2.find_instance(instance_id) is not None
    if not exists and not deps.ec2.is_terminated(instance_id):
        # Unknown rather than terminated: a wrong region or account looks the same, and must
        # not end every grant. Revoking the grants ends them for good.
        raise InstanceNotFound(instance_id)
    adopted = adoption_of(deps, names, observed) if exists else None
    if adopted is not None:
        return find_adopted_drift(names, desired, adopted)
    return find_drift(names, desired, observed, instance_exists=exists)


def _repair(deps: Dependencies, instance_id: str, drifts: list[Drift], actor: str) -> bool:
    """Repairs what the broker may repair; True when every difference is gone."""
    kinds = {drift.kind for drift in drifts}
    if DriftKind.FOREIGN_ASSOCIATION in kinds:
        reason = f"instance {instance_id} now holds an instance profile the broker does not manage"
        _end_live_grants(deps, instance_id, actor, reason, state=GrantState.FAILED)
    elif DriftKind.INSTANCE_GONE in kinds:
        gone = f"instance {instance_id} no longer exists"
        _end_live_grants(deps, instance_id, actor, gone, state=GrantState.REVOKING)
    try:
        # Withdraws the broker's own resources after the two cases above; repairs the rest.
        converge_instance(deps, instance_id, actor)
    except BrokerError as error:
        log.warning("could not repair the drift of %s yet: %s", instance_id, error)
        _audit(deps, actor, AuditAction.DRIFT_REPAIR_FAILED, drifts, reason=str(error))
        return False
    if DriftKind.FOREIGN_ASSOCIATION in kinds:
        return False  # reported, not overwritten
    _audit(deps, actor, AuditAction.DRIFT_REPAIRED, drifts)
    return True


def _end_live_grants(
    deps: Dependencies, instance_id: str, actor: str, reason: str, *, state: GrantState
) -> None:
    """Moves the instance's pending and active grants to FAILED, or to REVOKING (convergence
    then tears down and settles them as a revocation would), saying why."""
    failed = state is GrantState.FAILED
    action = AuditAction.GRANT_FAILED if failed else AuditAction.GRANT_REVOKE_REQUESTED
    failure = reason if failed else ""
    now = deps.clock.now()
    with deps.uow() as uow:
        for grant in uow.grants.for_instance(instance_id):
            if grant.state.is_desired:
                ended = grant.moved_to(state, now, failure_reason=failure)
                uow.grants.save(ended)
                uow.audit.append(grant_event(now, actor, action, ended, reason=reason))
        uow.commit()


def _audit(
    deps: Dependencies, actor: str, action: AuditAction, drifts: list[Drift], **extra: str
) -> None:
    with deps.uow() as uow:
        for drift in drifts:
            uow.audit.append(drift_event(deps.clock.now(), actor, action, drift, **extra))
        uow.commit()
