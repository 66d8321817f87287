"""Convergence's side in AWS: observing what AWS holds for an instance, carrying out a plan's
steps, and keeping the instance record as true as AWS is.

The record is the broker's own account of what AWS holds for an instance: convergence plans
from AWS, and the record is what tells a change the broker made from one made behind its back.
Each step is recorded, with its audit event, as soon as AWS has done it.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from broker.domain.audit import step_event
from broker.domain.convergence import (
    MANAGED_ELSEWHERE,
    NOT_ADOPTABLE,
    AdoptedRole,
    AssociationInfo,
    ObservedState,
    ProfileInfo,
    RoleInfo,
    Step,
    StepKind,
    is_our_association,
    profile_name_of,
    require_managed,
)
from broker.domain.grants import InstanceResources
from broker.domain.naming import ManagedNames
from broker.domain.policy import PolicyDocument, render
from broker.domain.trust import EC2_TRUST_POLICY
from broker.service.ports import Clock, Ec2, Iam, InstanceRecord, UnitOfWorkFactory


class StepRunner:
    """Performs plan steps for one instance; each returns its resources as they stand after."""

    def __init__(
        self,
        iam: Iam,
        ec2: Ec2,
        names: ManagedNames,
        document: PolicyDocument | None,
    ) -> None:
        self._iam, self._ec2, self._names, self._document = iam, ec2, names, document
        # Whether this runner put the role's boundary back: IAM may take a moment to see it.
        self._boundary_put = False

    def run(self, step: Step, resources: InstanceResources) -> InstanceResources:
        handlers: dict[StepKind, Callable[[Step, InstanceResources], InstanceResources]] = {
            StepKind.CREATE_ROLE: self._create_role,
            StepKind.PUT_POLICY: self._put_policy,
            StepKind.RESTORE_TRUST: self._restore_trust,
            StepKind.PUT_BOUNDARY: self._put_boundary,
            StepKind.DETACH_POLICY: self._detach_policy,
            StepKind.CREATE_PROFILE: self._create_profile,
            StepKind.ADD_ROLE_TO_PROFILE: self._add_role_to_profile,
            StepKind.ASSOCIATE: self._associate,
            StepKind.DISASSOCIATE: self._disassociate,
            StepKind.REMOVE_ROLE_FROM_PROFILE: self._remove_role_from_profile,
            StepKind.DELETE_PROFILE: self._delete_profile,
            StepKind.DELETE_POLICY: self._delete_policy,
            StepKind.DELETE_ROLE: self._delete_role,
        }
        return handlers[step.kind](step, resources)

    def _create_role(self, _: Step, resources: InstanceResources) -> InstanceResources:
        n = self._names
        role = self._iam.create_role(
            n.role_name, n.path, EC2_TRUST_POLICY, n.tags, permissions_boundary=n.boundary
        )
        require_managed("role", role)  # it may have been there already, and someone else's
        return replace(resources, role_name=role.name, role_arn=role.arn)

    def _put_policy(self, step: Step, resources: InstanceResources) -> InstanceResources:
        assert self._document is not None, "the plan puts a policy only when one is desired"
        self._iam.put_role_policy(
            step.target, step.within, render(self._document), after_boundary=self._boundary_put
        )
        return resources

    def _restore_trust(self, step: Step, resources: InstanceResources) -> InstanceResources:
        self._iam.update_trust_policy(step.target, EC2_TRUST_POLICY)
        return resources

    def _put_boundary(self, step: Step, resources: InstanceResources) -> InstanceResources:
        self._iam.put_role_boundary(step.target, step.within)
        self._boundary_put = True
        return resources

    def _detach_policy(self, step: Step, resources: InstanceResources) -> InstanceResources:
        self._iam.detach_policy(step.target, step.within)
        return resources

    def _create_profile(self, _: Step, resources: InstanceResources) -> InstanceResources:
        n = self._names
        profile = self._iam.create_instance_profile(n.profile_name, n.path, n.tags)
        require_managed("instance profile", profile)
        return replace(resources, profile_name=profile.name, profile_arn=profile.arn)

    def _add_role_to_profile(self, _: Step, resources: InstanceResources) -> InstanceResources:
        self._iam.add_role_to_instance_profile(self._names.profile_name, self._names.role_name)
        return resources

    def _associate(self, _: Step, resources: InstanceResources) -> InstanceResources:
        association = self._ec2.associate(self._names.instance_id, self._names.profile_name)
        return replace(resources, association_id=association.association_id)

    def _disassociate(self, step: Step, resources: InstanceResources) -> InstanceResources:
        self._ec2.disassociate(step.target)
        return replace(resources, association_id="")

    def _remove_role_from_profile(
        self, step: Step, resources: InstanceResources
    ) -> InstanceResources:
        self._iam.remove_role_from_instance_profile(self._names.profile_name, step.target)
        return resources

    def _delete_profile(self, _: Step, resources: InstanceResources) -> InstanceResources:
        self._iam.delete_instance_profile(self._names.profile_name)
        return replace(resources, profile_name="", profile_arn="")

    def _delete_policy(self, step: Step, resources: InstanceResources) -> InstanceResources:
        self._iam.delete_role_policy(step.target, step.within)
        return resources

    def _delete_role(self, _: Step, resources: InstanceResources) -> InstanceResources:
        self._iam.delete_role(self._names.role_name)
        return replace(resources, role_name="", role_arn="")


# ---------------------------------------------------------------------------------------------
# Observing what AWS holds before planning.


@dataclass(frozen=True)
class Observation:
    """What AWS holds for the instance's managed names, and the role it adopted, if any."""

    own: ObservedState
    adopted: AdoptedRole | None
    # Taken from the broker's record instead of read from AWS (see presumed()).
    presumed: bool = False
    # The broker's record of the instance when this was taken: unchanged, nothing of the
    # broker's has changed the instance since.
    record: InstanceRecord | None = None


def observe(
    iam: Iam,
    ec2: Ec2,
    names: ManagedNames,
    *,
    adopt_foreign_profiles: bool,
    unassociated: bool = False,
) -> Observation:
    """What AWS holds, read from it; `unassociated`: EC2 just said the instance holds no
    profile, so its associations are not read again."""
    own = _observe_own(iam, ec2, names, unassociated=unassociated)
    adopted = _adoption_of(iam, ec2, names, own) if adopt_foreign_profiles else None
    return Observation(own, adopted)


def presumed(
    names: ManagedNames, record: InstanceRecord | None, association: AssociationInfo | None
) -> Observation | None:
    """What AWS holds according to the broker's record, given the instance's association as
    EC2 shows it now: the record answers for the role, its policy and the profile, which only
    the broker changes (drift is the sweep's to find). None where the record cannot answer: no
    complete record of the broker's own role and profile, or an association that is not the one
    it recorded."""
    if record is None:
        return None
    held = record.resources
    complete = bool(held.role_arn and held.profile_arn and record.role_in_profile)
    if not complete or held.role_name != names.role_name:
        return None
    if association is None or association.association_id != held.association_id:
        return None
    if not is_our_association(names, association):
        return None
    own = ObservedState(
        role=RoleInfo(held.role_name, held.role_arn, managed=True),
        policy=json.loads(record.policy_document) if record.policy_document else None,
        profile=ProfileInfo(held.profile_name, held.profile_arn, (held.role_name,), managed=True),
        association=association,
    )
    return Observation(own, adopted=None, presumed=True)


def as_recorded(
    names: ManagedNames, record: InstanceRecord | None, association: AssociationInfo | None
) -> Observation:
    """What AWS holds as the broker's record says, complete or not, given the instance's
    association: for a grant admitted while grants admitted before it wait for the instance's
    convergence, which records each step as soon as AWS has done it (their admission read AWS)."""
    held = record.resources if record is not None else InstanceResources()
    role = RoleInfo(held.role_name, held.role_arn, managed=True) if held.role_arn else None
    in_profile = (held.role_name,) if record is not None and record.role_in_profile else ()
    profile = (
        ProfileInfo(held.profile_name, held.profile_arn, in_profile, managed=True)
        if held.profile_arn
        else None
    )
    document = record.policy_document if record is not None else ""
    own = ObservedState(
        role=role,
        policy=json.loads(document) if document else None,
        profile=profile,
        association=association,
    )
    return Observation(own, adopted=None, presumed=True)


def _observe_own(iam: Iam, ec2: Ec2, names: ManagedNames, *, unassociated: bool) -> ObservedState:
    role = iam.get_role(names.role_name)
    ours = role is not None and role.managed  # another's role is refused, its policies unread
    return ObservedState(
        role=role,
        policy=iam.get_role_policy(names.role_name, names.policy_name) if role else None,
        profile=iam.get_instance_profile(names.profile_name),
        association=None if unassociated else ec2.get_association(names.instance_id),
        other_inline_policies=tuple(
            p for p in iam.list_inline_policies(names.role_name) if p != names.policy_name
        )
        if ours
        else (),
        attached_policies=tuple(iam.list_attached_policies(names.role_name)) if ours else (),
    )


def _adoption_of(iam: Iam, ec2: Ec2, names: ManagedNames, own: ObservedState) -> AdoptedRole | None:
    """The role to adopt, when adoption is on and the instance holds a foreign profile."""
    association = own.association
    if association is None or is_our_association(names, association):
        return None
    arn, association_id = association.profile_arn, association.association_id
    profile = iam.get_instance_profile(profile_name_of(arn))
    role_name = profile.role_names[0] if profile is not None and profile.role_names else ""
    role = iam.get_role(role_name) if role_name else None
    if (profile is not None and profile.managed) or (role is not None and role.managed):
        # Another instance's: its policy has the broker's policy name, and is never touched.
        return AdoptedRole(arn, association_id, "", "", None, refusal=MANAGED_ELSEWHERE)
    if role is None:
        return AdoptedRole(arn, association_id, "", "", None)
    refusal = NOT_ADOPTABLE if not role.adoptable else ""
    return AdoptedRole(
        profile_arn=arn,
        association_id=association_id,
        role_name=role.name,
        role_arn=role.arn,
        policy=iam.get_role_policy(role.name, names.policy_name),
        refusal=refusal or _sharing(iam, ec2, names.instance_id, arn, role.name),
    )


def _sharing(iam: Iam, ec2: Ec2, instance_id: str, profile_arn: str, role_name: str) -> str:
    """Why the role cannot carry one instance's grants: others would get them too."""
    if iam.profiles_holding(role_name) != [profile_name_of(profile_arn)]:
        return "whose role other instance profiles hold too: their instances would get the access"
    others = ec2.instances_holding(profile_arn) - {instance_id}
    if others:
        return f"which {len(others)} other instance(s) hold too: they would get the access"
    return ""


class StepRecorder:
    """Writes the instance record, and each finished step's audit event beside it."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    def save(self, record: InstanceRecord) -> None:
        with self._uow() as uow:
            uow.instances.save(record)
            uow.commit()

    def done(self, step: Step, record: InstanceRecord, actor: str, **detail: str) -> None:
        """Audits a finished AWS change together with the instance record it changed."""
        with self._uow() as uow:
            uow.instances.save(record)
            uow.audit.append(step_event(record.updated_at, actor, record.instance, step, **detail))
            uow.commit()


def observed_record(names: ManagedNames, observed: ObservedState, now: datetime) -> InstanceRecord:
    """The record of what AWS holds, as just observed; a foreign association is not ours."""
    association = observed.association
    ours = association is not None and is_our_association(names, association)
    profile = observed.profile
    return InstanceRecord(
        instance=names.instance,
        resources=InstanceResources(
            role_name=observed.role.name if observed.role else "",
            role_arn=observed.role.arn if observed.role else "",
            profile_name=profile.name if profile else "",
            profile_arn=profile.arn if profile else "",
            association_id=association.association_id if association and ours else "",
        ),
        policy_document=render(observed.policy) if observed.policy else "",
        role_in_profile=profile is not None and names.role_name in profile.role_names,
        updated_at=now,
    )


def adopted_record(
    names: ManagedNames, adopted: AdoptedRole, policy: dict[str, object] | None, now: datetime
) -> InstanceRecord:
    """The record of an adopted instance: the adopted role carries the broker's `policy`
    (None: nothing of the broker's is on it)."""
    resources = InstanceResources(
        role_name=adopted.role_name,
        role_arn=adopted.role_arn,
        profile_name=profile_name_of(adopted.profile_arn),
        profile_arn=adopted.profile_arn,
        association_id=adopted.association_id,
    )
    return InstanceRecord(
        instance=names.instance,
        resources=resources if policy is not None else InstanceResources(),
        policy_document=render(policy) if policy is not None else "",
        updated_at=now,
    )


def record_after(
    names: ManagedNames,
    record: InstanceRecord,
    step: Step,
    resources: InstanceResources,
    *,
    document: PolicyDocument | None,
    now: datetime,
) -> InstanceRecord:
    """The record once `step` is done on the broker's own resources: never claiming more than
    AWS then holds."""
    policy, in_profile = record.policy_document, record.role_in_profile
    if step.kind is StepKind.PUT_POLICY and document is not None:
        policy = render(document)
    elif step.kind is StepKind.DELETE_POLICY and step.within == names.policy_name:
        policy = ""
    elif step.kind is StepKind.ADD_ROLE_TO_PROFILE:
        in_profile = True
    elif step.kind is StepKind.DELETE_PROFILE or (
        step.kind is StepKind.REMOVE_ROLE_FROM_PROFILE and step.target == names.role_name
    ):
        in_profile = False
    return replace(
        record,
        resources=resources,
        policy_document=policy,
        role_in_profile=in_profile,
        updated_at=now,
    )
