"""Carrying out planned steps in AWS, and recording each as soon as it is done."""

from collections.abc import Callable
from dataclasses import replace

from broker.domain.audit import step_event
from broker.domain.convergence import Step, StepKind, require_managed
from broker.domain.grants import InstanceResources
from broker.domain.naming import ManagedNames
from broker.domain.policy import PolicyDocument, render
from broker.domain.trust import EC2_TRUST_POLICY
from broker.service.dependencies import Dependencies
from broker.service.ports import InstanceRecord


class StepRunner:
    """Performs plan steps; each returns the instance's resources as they stand after it."""

    def __init__(
        self, deps: Dependencies, names: ManagedNames, document: PolicyDocument | None
    ) -> None:
        self._iam, self._ec2, self._names, self._document = deps.iam, deps.ec2, names, document
        self._boundary = deps.permissions_boundary_arn

    def run(self, step: Step, resources: InstanceResources) -> InstanceResources:
        handlers: dict[StepKind, Callable[[Step, InstanceResources], InstanceResources]] = {
            StepKind.CREATE_ROLE: self._create_role,
            StepKind.PUT_POLICY: self._put_policy,
            StepKind.RESTORE_TRUST: self._restore_trust,
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
            n.role_name, n.path, EC2_TRUST_POLICY, n.tags, permissions_boundary=self._boundary
        )
        require_managed("role", role)  # it may have been there already, and someone else's
        return replace(resources, role_name=role.name, role_arn=role.arn)

    def _put_policy(self, step: Step, resources: InstanceResources) -> InstanceResources:
        assert self._document is not None, "the plan puts a policy only when one is desired"
        self._iam.put_role_policy(step.target, step.within, render(self._document))
        return resources

    def _restore_trust(self, step: Step, resources: InstanceResources) -> InstanceResources:
        self._iam.update_trust_policy(step.target, EC2_TRUST_POLICY)
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


def record_step(deps: Dependencies, step: Step, record: InstanceRecord, actor: str) -> None:
    """Audits a finished AWS change together with the instance record it changed."""
    with deps.uow() as uow:
        uow.instances.save(record)
        uow.audit.append(step_event(record.updated_at, actor, record.instance_id, step))
        uow.commit()
