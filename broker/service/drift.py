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
from dataclasses import dataclass
from datetime import datetime, timedelta

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
from broker.domain.places import InstanceRef, Place
from broker.service.commands import DriftFinding, Reconcile, RepairDrift
from broker.service.convergence import Convergence
from broker.service.messagebus import Context
from broker.service.ports import Clock, InstanceLocks, InstancesSeen, UnitOfWorkFactory
from broker.service.sweeps import each_concurrently

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unrepaired:
    """Drift found on an instance that is still there after the broker tried (or, for a foreign
    association, only reported it), and why the repair failed ("" for reported only)."""

    drifts: tuple[Drift, ...]
    reason: str


class DriftRepair:
    """Finding and repairing one instance's drift, for Reconcile and for the sweep.

    The audit trail records changes, not repetitions: drift is audited when found, and again
    when repaired or gone; a pass that finds the same drift and fails to repair it for the same
    reason as the last one audits nothing. What lasts is kept in this process (after a restart
    it is audited once more)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        locks: InstanceLocks,
        convergence: Convergence,
        gone_after: timedelta = timedelta(hours=2),
    ) -> None:
        self._uow, self._clock, self._gone_after = uow, clock, gone_after
        self._locks, self._convergence = locks, convergence
        # By instance key; each entry is read and written under the instance's lock.
        self._unrepaired: dict[str, Unrepaired] = {}

    def suspects(
        self, instances: list[InstanceRef], *, skip_unreadable: bool = False
    ) -> list[InstanceRef]:
        """The instances that may have drifted, screened from AWS read in pages (IAM's listing
        of each account's roles, EC2's descriptions in batches of ids) rather than instance by
        instance: a pass examines only these one by one. The screen errs only towards
        suspicion: an instance it cannot judge from the listings (an adopted one, one EC2 does
        not know, one whose grants ended meanwhile) is a suspect. A place that cannot be read
        now (its account unreachable) fails the screen, or with `skip_unreadable` (the sweep's)
        is left for the next pass while the others are screened."""
        by_place: dict[Place, list[InstanceRef]] = {}
        for instance in instances:
            by_place.setdefault(instance.place, []).append(instance)
        roles_of: dict[str, Mapping[str, ListedRole]] = {}
        found = []
        for place, here in sorted(by_place.items()):
            try:
                found += self._suspects_at(place, here, roles_of)
            except BrokerError as error:
                if not skip_unreadable:
                    raise
                log.warning("could not screen the instances in %s for drift yet: %s", place, error)
        return found

    def to_examine(
        self, instances: list[InstanceRef], *, skip_unreadable: bool = False
    ) -> list[InstanceRef]:
        """The suspects, and the instances whose drift was left unrepaired by the last pass or
        that EC2 did not know (the screen would not suspect one set right since, or found again:
        it is looked at to say so)."""
        suspects = self.suspects(instances, skip_unreadable=skip_unreadable)
        with self._uow(read_only=True) as uow:
            missing = uow.instances.noted_missing()
        screened = set(suspects)
        lasting = [
            i
            for i in instances
            if (i.key in self._unrepaired or i in missing) and i not in screened
        ]
        return [*suspects, *lasting]

    def _suspects_at(
        self,
        place: Place,
        instances: list[InstanceRef],
        roles_of: dict[str, Mapping[str, ListedRole]],
    ) -> list[InstanceRef]:
        """The suspects among one place's instances; `roles_of` keeps each account's listing
        for the account's other regions."""
        if place.account not in roles_of:
            roles_of[place.account] = self._convergence.iam(place).list_broker_roles()
        ids = [i.instance_id for i in instances]
        seen = self._convergence.ec2(place).describe_many(ids)
        return [i for i in instances if self._suspect(i, roles_of[place.account], seen)]

    def _suspect(
        self, instance: InstanceRef, roles: Mapping[str, ListedRole], seen: InstancesSeen
    ) -> bool:
        names = self._convergence.names(instance)
        desired = self._convergence.desired(instance).document
        instance_id = instance.instance_id
        association = seen.associations.get(instance_id)
        exists = instance_id in seen.existing
        if desired is None or not (exists or instance_id in seen.gone):
            return True
        foreign = association is not None and not is_our_association(names, association)
        if foreign and self._convergence.adopts_foreign_profiles:
            return True
        observed = listed_state(names, roles.get(names.role_name), association)
        return bool(find_drift(names, desired, observed, instance_exists=exists))

    def instance(self, instance: InstanceRef, *, dry_run: bool, actor: str) -> list[DriftFinding]:
        if dry_run:
            return [DriftFinding(drift, repaired=False) for drift in self.detect(instance)]
        # Under the instance's lock: no grant changes the instance between finding and fixing.
        with self._locks.hold(instance.key):
            drifts = self._detect_noting_missing(instance)
            lasting = self._unrepaired.pop(instance.key, None)
            if not drifts:
                if lasting is not None:
                    self._audit(actor, AuditAction.DRIFT_RESOLVED, list(lasting.drifts))
                return []
            known = lasting if lasting is not None and lasting.drifts == tuple(drifts) else None
            if known is None:
                self._audit(actor, AuditAction.DRIFT_DETECTED, drifts)
            repaired = self._repair(instance, drifts, actor, known)
        return [DriftFinding(drift, repaired) for drift in drifts]

    def detect(self, instance: InstanceRef) -> list[Drift]:
        names = self._convergence.names(instance)
        desired = self._convergence.desired(instance).document
        seen = self._convergence.observe(names)
        ec2, instance_id = self._convergence.ec2(instance.place), instance.instance_id
        exists = desired is None or ec2.find_instance(instance_id) is not None
        if not exists and not ec2.is_terminated(instance_id):
            # Unknown rather than terminated: a wrong region or account looks the same, and must
            # not end every grant. Revoking the grants ends them for good.
            raise InstanceNotFound(str(instance))
        if exists and seen.adopted is not None:
            return find_adopted_drift(names, desired, seen.adopted)
        return find_drift(names, desired, seen.own, instance_exists=exists)

    def _detect_noting_missing(self, instance: InstanceRef) -> list[Drift]:
        """The drift, and what it means that EC2 does not know the instance (where it was
        granted): noted the first time, still NOT_FOUND for a while (a hiccup, a lagging
        listing), and taken for gone once BROKER_GONE_AFTER has passed since."""
        try:
            drifts = self.detect(instance)
        except InstanceNotFound:
            since = self._missing_since(instance)
            if self._clock.now() - since < self._gone_after:
                raise
            unknown = f"unknown to EC2 since {since.isoformat()}"
            return [Drift(instance, DriftKind.INSTANCE_GONE, "a running instance", unknown)]
        with self._uow(read_only=True) as uow:
            noted = uow.instances.missing_since(instance) is not None
        if noted:
            self._note_found(instance)
        return drifts

    def _missing_since(self, instance: InstanceRef) -> datetime:
        with self._uow() as uow:
            since = uow.instances.missing_since(instance)
            if since is None:
                since = self._clock.now()
                uow.instances.note_missing(instance, since)
                uow.commit()
        return since

    def _note_found(self, instance: InstanceRef) -> None:
        with self._uow() as uow:
            uow.instances.note_found(instance)
            uow.commit()

    def _repair(
        self, instance: InstanceRef, drifts: list[Drift], actor: str, known: Unrepaired | None
    ) -> bool:
        """Repairs what the broker may repair; True when every difference is gone. `known`: the
        same drift, left unrepaired by the last pass (its failure is not audited again)."""
        kinds = {drift.kind for drift in drifts}
        if DriftKind.FOREIGN_ASSOCIATION in kinds:
            why = f"instance {instance} now holds an instance profile the broker does not manage"
            self._end_live_grants(instance, actor, why, state=GrantState.FAILED)
        elif DriftKind.INSTANCE_GONE in kinds:
            gone = f"instance {instance} no longer exists"
            self._end_live_grants(instance, actor, gone, state=GrantState.REVOKING)
        try:
            # Withdraws the broker's own resources after the two cases above; repairs the rest.
            self._convergence.converge(instance, actor)
        except BrokerError as error:
            log.warning("could not repair the drift of %s yet: %s", instance, error)
            if known is None or known.reason != str(error):
                self._audit(actor, AuditAction.DRIFT_REPAIR_FAILED, drifts, reason=str(error))
            self._unrepaired[instance.key] = Unrepaired(tuple(drifts), str(error))
            return False
        if DriftKind.FOREIGN_ASSOCIATION in kinds:
            self._unrepaired[instance.key] = Unrepaired(tuple(drifts), "")
            return False  # reported, not overwritten
        if DriftKind.INSTANCE_GONE in kinds:
            self._note_found(instance)  # gone for good: nothing to wait for any more
        self._audit(actor, AuditAction.DRIFT_REPAIRED, drifts)
        return True

    def _end_live_grants(
        self, instance: InstanceRef, actor: str, reason: str, *, state: GrantState
    ) -> None:
        """Moves the instance's pending and active grants to FAILED, or to REVOKING (convergence
        then tears down and settles them as a revocation would), saying why."""
        failed = state is GrantState.FAILED
        action = AuditAction.GRANT_FAILED if failed else AuditAction.GRANT_REVOKE_REQUESTED
        now = self._clock.now()
        with self._uow() as uow:
            for grant in uow.grants.for_instance(instance):
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
    named = command.instance
    with uow(read_only=True) as unit:
        if named is None:
            instances = [i for i in unit.grants.live_instances() if command.places.holds(i.place)]
        elif unit.instances.get(named) is None and not unit.grants.for_instance(named):
            return []
        else:
            instances = [named]
    if named is None:
        instances = drift.to_examine(instances)
    findings = []
    for instance in instances:
        findings += drift.instance(instance, dry_run=command.dry_run, actor=command.actor)
    return findings


def repair_drift(
    command: RepairDrift, context: Context, *, uow: UnitOfWorkFactory, drift: DriftRepair
) -> list[DriftFinding]:
    """The sweep's pass over every instance with a live grant; an instance that cannot be
    checked now (AWS unavailable, say) is tried again next time."""
    with uow(read_only=True) as unit:
        instances = unit.grants.live_instances()
    suspects = drift.to_examine(instances, skip_unreadable=True)
    found, _ = each_concurrently(
        suspects,
        lambda instance: drift.instance(instance, dry_run=False, actor=command.actor),
        "check for drift",
    )
    return [finding for findings in found for finding in findings]
