"""Converging an adopted instance (BROKER_FOREIGN_PROFILE=attach): the broker's inline policy
goes on the role in the instance's own profile, and comes off it when no grant needs it.

The instance record names the role that carries the broker's policy, so that a policy left on a
role the instance no longer uses (its profile was replaced) is withdrawn, never forgotten.
"""

from datetime import datetime

from broker.domain.adoption import MANAGED_ELSEWHERE, AdoptedRole, plan_adopted, profile_name_of
from broker.domain.convergence import ObservedState, Step, StepKind, is_our_association
from broker.domain.grants import InstanceResources
from broker.domain.naming import ManagedNames
from broker.domain.policy import PolicyDocument, render
from broker.service.dependencies import Dependencies
from broker.service.ports import InstanceRecord
from broker.service.steps import StepRunner, record_step


def adoption_of(
    deps: Dependencies, names: ManagedNames, observed: ObservedState
) -> AdoptedRole | None:
    """The role to adopt, when adoption is on and the instance holds a foreign profile."""
    association = observed.association
    if (
        not deps.adopt_foreign_profiles
        or association is None
        or is_our_association(names, association)
    ):
        return None
    arn, association_id = association.profile_arn, association.association_id
    profile = deps.iam.get_instance_profile(profile_name_of(arn))
    role_name = profile.role_names[0] if profile is not None and profile.role_names else ""
    role = deps.iam.get_role(role_name) if role_name else None
    if (profile is not None and profile.managed) or (role is not None and role.managed):
        # Another instance's: its policy has the broker's policy name, and is never touched.
        return AdoptedRole(arn, association_id, "", "", None, refusal=MANAGED_ELSEWHERE)
    if role is None:
        return AdoptedRole(arn, association_id, "", "", None)
    return AdoptedRole(
        profile_arn=arn,
        association_id=association_id,
        role_name=role.name,
        role_arn=role.arn,
        policy=deps.iam.get_role_policy(role.name, names.policy_name),
        refusal=_sharing(deps, names.instance_id, arn, role.name),
    )


def _sharing(deps: Dependencies, instance_id: str, profile_arn: str, role_name: str) -> str:
    """Why the role cannot carry one instance's grants: others would get them too."""
    if deps.iam.profiles_holding(role_name) != [profile_name_of(profile_arn)]:
        return "whose role other instance profiles hold too: their instances would get the access"
    others = deps.ec2.instances_holding(profile_arn) - {instance_id}
    if others:
        return f"which {len(others)} other instance(s) hold too: they would get the access"
    return ""


def apply_adopted(
    deps: Dependencies,
    names: ManagedNames,
    document: PolicyDocument | None,
    observed: ObservedState,
    adopted: AdoptedRole,
    *,
    actor: str,
) -> InstanceResources:
    """Carries out the adopted plan; returns what now carries the instance's grants."""
    record = _adopted_record(names, adopted, adopted.policy, deps.clock.now())
    runner = StepRunner(deps, names, document)
    for step in plan_adopted(names, document, observed, adopted):
        if step.target == adopted.role_name and step.kind is StepKind.PUT_POLICY:
            record = _adopted_record(names, adopted, document, deps.clock.now())
            # Named before the put: a crash right after it must not leave the broker's policy
            # on a role its record does not know of, where nothing would ever withdraw it.
            _remember(deps, record)
        runner.run(step, record.resources)
        if step.target == adopted.role_name and step.kind is StepKind.DELETE_POLICY:
            record = _adopted_record(names, adopted, None, deps.clock.now())
        record_step(deps, step, record, actor)
    return record.resources


def _remember(deps: Dependencies, record: InstanceRecord) -> None:
    with deps.uow() as uow:
        uow.instances.save(record)
        uow.commit()


def withdraw_stale_adoption(
    deps: Dependencies, names: ManagedNames, current_role: str, actor: str
) -> None:
    """Removes the broker's policy from a role it adopted earlier that no longer carries the
    instance's grants (its profile was replaced, or taken off the instance)."""
    with deps.uow() as uow:
        record = uow.instances.get(names.instance_id)
    if record is None or not record.policy_document:
        return
    stale = record.resources.role_name
    if stale in ("", names.role_name, current_role):
        return
    step = Step(StepKind.DELETE_POLICY, stale, names.policy_name)
    StepRunner(deps, names, None).run(step, record.resources)
    emptied = InstanceRecord(
        instance_id=names.instance_id,
        resources=InstanceResources(),
        policy_document="",
        updated_at=deps.clock.now(),
    )
    record_step(deps, step, emptied, actor)


def _adopted_record(
    names: ManagedNames, adopted: AdoptedRole, policy: dict[str, object] | None, now: datetime
) -> InstanceRecord:
    resources = InstanceResources(
        role_name=adopted.role_name,
        role_arn=adopted.role_arn,
        profile_name=profile_name_of(adopted.profile_arn),
        profile_arn=adopted.profile_arn,
        association_id=adopted.association_id,
    )
    return InstanceRecord(
        instance_id=names.instance_id,
        resources=resources if policy is not None else InstanceResources(),
        policy_document=render(policy) if policy is not None else "",
        updated_at=now,
    )
