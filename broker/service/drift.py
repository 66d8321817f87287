"""Drift: find where AWS differs from what the live grants need and, unless a dry run, repair it.

A pass over every instance (the sweep's, or Reconcile's without an instance) first screens them
all from AWS read in pages, and examines one by one, under its lock, only the instances the
screen suspects: its cost grows with the pages of the account's listings, not with the number
of instances.

Most drift is repaired by converging, which plans from what AWS holds. Two kinds are not:
a foreign association is the instance owner's choice, so the broker reports it and fails the
grants it can no longer carry; a terminated instance's grants end and its resources go.
"""

import logging
from collections.abc import Mapping

from broker.domain.access import GrantState
from broker.domain.audit import AuditAction, drift_event, grant_event
from broker.domain.convergence import is_our_association
from broker.domain.drift import (
    Drift,
    DriftKind,
    ListedRole,
    find_adopted_drift,
    find_drift,
    listed_state,
)
from broker.domain.errors import BrokerError, InstanceNotFound
from broker.service.commands import DriftFinding, Reconcile, RepairDrift
from broker.service.convergence import Convergence
from broker.service.messagebus import Context
from broker.service.ports import Clock, Ec2, Iam, InstanceLocks, InstancesSeen, UnitOfWorkFactory
from broker.service.sweeps import each_concurrently

log = logging.getLogger(__name__)


class DriftRepair:
    """Finding and repairing one instance's drift, for Reconcile and for the sweep."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        iam: Iam,
        ec2: Ec2,
        clock: Clock,
        locks: InstanceLocks,
        convergence: Convergence,
    ) -> None:
        self._uow, self._iam, self._ec2, self._clock = uow, iam, ec2, clock
        self._locks, self._convergence = locks, convergence

    def suspects(self, instance_ids: list[str]) -> list[str]:
        """The instances that may have drifted, screened from AWS read in pages (IAM's listing
        of the account's roles, EC2's descriptions in batches of ids) rather than instance by
        instance: a pass examines only these one by one. The screen errs only towards
        suspicion: an instance it cannot judge from the listings (an adopted one, one EC2 does
        not know, one whose grants ended meanwhile) is a suspect."""
        if not instance_ids:
            return []
        roles, seen = self._iam.list_broker_roles(), self._ec2.describe_many(instance_ids)
        return [i for i in instance_ids if self._suspect(i, roles, seen)]

    def _suspect(
        self, instance_id: str, roles: Mapping[str, ListedRole], seen: InstancesSeen
    ) -> bool:
        names = self._convergence.names(instance_id)
        desired = self._convergence.desired(instance_id).document
        association = seen.associations.get(instance_id)
        exists = instance_id in seen.existing
        if desired is None or not (exists or instance_id in seen.gone):
            return True
        foreign = association is not None and not is_our_association(names, association)
        if foreign and self._convergence.adopts_foreign_profiles:
            return True
        observed = listed_state(names, roles.get(names.role_name), association)
        return bool(find_drift(names, desired, observed, instance_exists=exists))

    def instance(self, instance_id: str, *, dry_run: bool, actor: str) -> list[DriftFinding]:
        if dry_run:
            return [DriftFinding(drift, repaired=False) for drift in self.detect(instance_id)]
        # Under the instance's lock: no grant changes the instance between finding and fixing.
        with self._locks.hold(instance_id):
            drifts = self.detect(instance_id)
            if not drifts:
                return []
            self._audit(actor, AuditAction.DRIFT_DETECTED, drifts)
            repaired = self._repair(instance_id, drifts, actor)
        return [DriftFinding(drift, repaired) for drift in drifts]

    def detect(self, instance_id: str) -> list[Drift]:
        names = self._convergence.names(instance_id)
        desired = self._convergence.desired(instance_id).document
        seen = self._convergence.observe(names)
        exists = desired is None or self._ec2.find_instance(instance_id) is not None
        if not exists and not self._ec2.is_terminated(instance_id):
            # Unknown rather than terminated: a wrong region or account looks the same, and must
            # not end every grant. Revoking the grants ends them for good.
            raise InstanceNotFound(instance_id)
        if exists and seen.adopted is not None:
            return find_adopted_drift(names, desired, seen.adopted)
        return find_drift(names, desired, seen.own, instance_exists=exists)

    def _repair(self, instance_id: str, drifts: list[Drift], actor: str) -> bool:
        """Repairs what the broker may repair; True when every difference is gone."""
        kinds = {drift.kind for drift in drifts}
        if DriftKind.FOREIGN_ASSOCIATION in kinds:
            why = f"instance {instance_id} now holds an instance profile the broker does not manage"
            self._end_live_grants(instance_id, actor, why, state=GrantState.FAILED)
        elif DriftKind.INSTANCE_GONE in kinds:
            gone = f"instance {instance_id} no longer exists"
            self._end_live_grants(instance_id, actor, gone, state=GrantState.REVOKING)
        try:
            # Withdraws the broker's own resources after the two cases above; repairs the rest.
            self._convergence.converge(instance_id, actor)
        except BrokerError as error:
            log.warning("could not repair the drift of %s yet: %s", instance_id, error)
            self._audit(actor, AuditAction.DRIFT_REPAIR_FAILED, drifts, reason=str(error))
            return False
        if DriftKind.FOREIGN_ASSOCIATION in kinds:
            return False  # reported, not overwritten
        self._audit(actor, AuditAction.DRIFT_REPAIRED, drifts)
        return True

    def _end_live_grants(
        self, instance_id: str, actor: str, reason: str, *, state: GrantState
    ) -> None:
        """Moves the instance's pending and active grants to FAILED, or to REVOKING (convergence
        then tears down and settles them as a revocation would), saying why."""
        failed = state is GrantState.FAILED
        action = AuditAction.GRANT_FAILED if failed else AuditAction.GRANT_REVOKE_REQUESTED
        now = self._clock.now()
        with self._uow() as uow:
            for grant in uow.grants.for_instance(instance_id):
                if grant.state.is_desired:
                    ended = grant.moved_to(state, now, failure_reason=reason if failed else "")
                    uow.grants.save(ended)
                    uow.audit.append(grant_event(now, actor, action, ended, reason=reason))
            uow.commit()

    def _audit(self, actor: str, action: AuditAction, drifts: list[Drift], **extra: str) -> None:
        with self._uow() as uow:
            for drift in drifts:
                uow.audit.append(drift_event(self._clock.now(), actor, action, drift, **extra))
            uow.commit()


def reconcile(
    command: Reconcile, context: Context, *, uow: UnitOfWorkFactory, drift: DriftRepair
) -> list[DriftFinding]:
    """The drift of one instance, or ("") of every instance with a live grant.

    An instance the broker has no record of is not its business: brokers sharing a role path
    (BROKER_REMOVE_ORPHANS=false) must not tear down each other's resources.
    """
    with uow(read_only=True) as unit:
        if not command.instance_id:
            instances = unit.grants.live_instances()
        elif unit.instances.get(command.instance_id) is None and not unit.grants.for_instance(
            command.instance_id
        ):
            return []
        else:
            instances = [command.instance_id]
    if not command.instance_id:
        instances = drift.suspects(instances)
    findings = []
    for instance_id in instances:
        findings += drift.instance(instance_id, dry_run=command.dry_run, actor=command.actor)
    return findings


def repair_drift(
    command: RepairDrift, context: Context, *, uow: UnitOfWorkFactory, drift: DriftRepair
) -> list[DriftFinding]:
    """The sweep's pass over every instance with a live grant; an instance that cannot be
    checked now (AWS unavailable, say) is tried again next time."""
    with uow(read_only=True) as unit:
        instances = unit.grants.live_instances()
    try:
        suspects = drift.suspects(instances)
    except BrokerError as error:
        log.warning("could not screen the instances for drift yet: %s", error)
        return []
    found, _ = each_concurrently(
        suspects,
        lambda instance_id: drift.instance(instance_id, dry_run=False, actor=command.actor),
        "check for drift",
    )
    return [finding for findings in found for finding in findings]
