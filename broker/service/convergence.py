"""converge_instance: make AWS hold exactly what an instance's live grants need.

Every step is idempotent and audited as soon as it is done, so an interrupted convergence is
finished by simply converging again.
"""

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from broker.domain.access import GrantState
from broker.domain.adoption import plan_adopted
from broker.domain.audit import AuditAction, grant_event, settled_event, step_event
from broker.domain.convergence import (
    ObservedState,
    RecordedState,
    Step,
    StepKind,
    is_our_association,
    plan,
    unrecorded_changes,
)
from broker.domain.errors import (
    AwsRejected,
    AwsUnavailable,
    BrokerError,
    DeadlineExceeded,
    ForeignProfile,
    ForeignRole,
    GuardrailViolation,
    PolicyTooLarge,
)
from broker.domain.grants import Grant, GrantScope, InstanceResources
from broker.domain.guardrails import check_guardrails
from broker.domain.naming import ManagedNames
from broker.domain.policy import PolicyDocument, build_policy, check_size, render
from broker.service.adoption import adoption_of, apply_adopted, withdraw_stale_adoption
from broker.service.dependencies import Dependencies
from broker.service.ports import InstanceRecord
from broker.service.steps import StepRunner, record_step

log = logging.getLogger(__name__)

UNRECORDED_NOTE = (
    "found done in AWS but not in the broker's record: made by an interrupted convergence, "
    "or by someone else"
)

# Errors after which retrying cannot help: the instance's pending grants fail with the reason.
PERMANENT_ERRORS = (ForeignProfile, ForeignRole, AwsRejected, PolicyTooLarge, GuardrailViolation)
# Errors that only postpone the work: the grants wait, with the reason, for the reconciler.
POSTPONING_ERRORS = (AwsUnavailable, DeadlineExceeded)


@dataclass(frozen=True)
class Desired:
    grants: list[Grant]
    # The scopes of the live grants, and the policy that grants them.
    scopes: list[GrantScope]
    document: PolicyDocument | None
    # Pending or active grants past their expiry: left out of the document, settled as EXPIRED.
    expired: frozenset[str] = frozenset()


def observe(deps: Dependencies, names: ManagedNames) -> ObservedState:
    role = deps.iam.get_role(names.role_name)
    ours = role is not None and role.managed  # another's role is refused, its policies unread
    return ObservedState(
        role=role,
        policy=deps.iam.get_role_policy(names.role_name, names.policy_name) if role else None,
        profile=deps.iam.get_instance_profile(names.profile_name),
        association=deps.ec2.get_association(names.instance_id),
        other_inline_policies=tuple(
            p for p in deps.iam.list_inline_policies(names.role_name) if p != names.policy_name
        )
        if ours
        else (),
        attached_policies=tuple(deps.iam.list_attached_policies(names.role_name)) if ours else (),
    )


def desired_state(deps: Dependencies, instance_id: str) -> Desired:
    """What AWS should hold now: a grant past its expiry no longer counts, swept or not yet."""
    now = deps.clock.now()
    with deps.uow() as uow:
        grants = uow.grants.for_instance(instance_id)
    scopes = [g.scope for g in grants if g.is_live(now)]
    expired = frozenset(g.grant_id for g in grants if g.state.is_desired and g.has_expired(now))
    return Desired(grants, scopes, build_policy(scopes), expired)


def converge_instance(deps: Dependencies, instance_id: str, actor: str) -> None:
    """Converges under the instance's lock; raises what stopped it after recording it.

    After a permanent failure the failed grants no longer count, so convergence runs once more
    to withdraw whatever of theirs already reached AWS.
    """
    with deps.locks.hold(instance_id):
        try:
            _converge_once(deps, instance_id, actor)
        except PERMANENT_ERRORS:
            try:
                _converge_once(deps, instance_id, actor)
            except BrokerError:
                log.warning(
                    "could not withdraw failed grants of %s yet", instance_id, exc_info=True
                )
            raise


def _converge_once(deps: Dependencies, instance_id: str, actor: str) -> None:
    names = ManagedNames(instance_id, deps.role_path)
    desired = desired_state(deps, instance_id)
    try:
        check_size(desired.document)
        check_guardrails(desired.document, desired.scopes)
        observed = observe(deps, names)
        adopted = adoption_of(deps, names, observed)
        withdraw_stale_adoption(deps, names, adopted.role_name if adopted else "", actor)
        if adopted is None:
            _record_unrecorded(deps, names, observed, actor)
            resources = _apply(deps, names, desired.document, observed, actor)
        else:
            resources = apply_adopted(deps, names, desired.document, observed, adopted, actor=actor)
    except POSTPONING_ERRORS as error:
        _note_failure(deps, desired.grants, actor, str(error), permanent=False)
        raise
    except PERMANENT_ERRORS as error:
        _note_failure(deps, desired.grants, actor, str(error), permanent=True)
        raise
    _settle(deps, names, desired, resources, actor)


def _record_unrecorded(
    deps: Dependencies, names: ManagedNames, observed: ObservedState, actor: str
) -> None:
    """Audits the changes AWS shows that the record lacks, before planning: a change whose
    convergence was killed before recording it would otherwise never reach the trail."""
    with deps.uow() as uow:
        found = unrecorded_changes(names, _recorded(uow.instances.get(names.instance_id)), observed)
        if not found:
            return
        now = deps.clock.now()
        for step in found:
            uow.audit.append(step_event(now, actor, names.instance_id, step, found=UNRECORDED_NOTE))
        uow.instances.save(_observed_record(names, observed, now))
        uow.commit()


def _recorded(record: InstanceRecord | None) -> RecordedState:
    if record is None:
        return RecordedState()
    return RecordedState(
        role=bool(record.resources.role_arn),
        policy=json.loads(record.policy_document) if record.policy_document else None,
        profile=bool(record.resources.profile_arn),
        role_in_profile=record.role_in_profile,
        association_id=record.resources.association_id,
    )


def _apply(
    deps: Dependencies,
    names: ManagedNames,
    document: PolicyDocument | None,
    observed: ObservedState,
    actor: str,
) -> InstanceResources:
    record = _observed_record(names, observed, deps.clock.now())
    steps = StepRunner(deps, names, document)
    for step in plan(names, document, observed):
        resources = steps.run(step, record.resources)
        record = _after_step(
            names, record, step, resources, document=document, now=deps.clock.now()
        )
        record_step(deps, step, record, actor)
    return record.resources


def _observed_record(names: ManagedNames, observed: ObservedState, now: datetime) -> InstanceRecord:
    """The record of what AWS holds, as just observed; a foreign association is not ours."""
    association = observed.association
    ours = association is not None and is_our_association(names, association)
    profile = observed.profile
    return InstanceRecord(
        instance_id=names.instance_id,
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


def _after_step(
    names: ManagedNames,
    record: InstanceRecord,
    step: Step,
    resources: InstanceResources,
    *,
    document: PolicyDocument | None,
    now: datetime,
) -> InstanceRecord:
    """The record once `step` is done: never claiming more than AWS then holds."""
    policy, in_profile = record.policy_document, record.role_in_profile
    if step.kind is StepKind.PUT_POLICY and document is not None:
        policy = render(document)
    elif step.kind is StepKind.DELETE_POLICY and step.within == names.policy_name:
        # Only the broker's own role reaches here: adopted roles are recorded apart.
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


def _settle(
    deps: Dependencies,
    names: ManagedNames,
    desired: Desired,
    resources: InstanceResources,
    actor: str,
) -> None:
    """Moves the converged grants to the state AWS now reflects, audited in the same transaction."""
    now = deps.clock.now()
    with deps.uow() as uow:
        for seen in desired.grants:
            grant = uow.grants.get(seen.grant_id)
            if grant is None or grant.state != seen.state:
                continue  # changed by someone else since; its own convergence settles it
            expired = grant.grant_id in desired.expired
            settled = _settled(grant, resources, now, expired=expired)
            if settled != grant:
                uow.grants.save(settled)
            if settled.state != grant.state:
                uow.audit.append(settled_event(now, actor, settled))
        uow.commit()


def _settled(grant: Grant, resources: InstanceResources, now: datetime, *, expired: bool) -> Grant:
    if expired:
        # As a revoked grant: it holds no resources any more, the audit trail keeps what did.
        return grant.moved_to(GrantState.EXPIRED, now).with_resources(InstanceResources(), now)
    if grant.state is GrantState.PENDING:
        return grant.moved_to(GrantState.ACTIVE, now).with_resources(resources, now)
    if grant.state is GrantState.REVOKING:
        # A revoked grant holds no resources; the audit trail keeps what once carried it.
        return grant.moved_to(GrantState.REVOKED, now).with_resources(InstanceResources(), now)
    if grant.resources != resources:
        return grant.with_resources(resources, now)
    return grant


def _note_failure(
    deps: Dependencies, grants: list[Grant], actor: str, reason: str, *, permanent: bool
) -> None:
    """Pending grants fail on a permanent error; otherwise they wait for the next convergence."""
    now = deps.clock.now()
    with deps.uow() as uow:
        for seen in grants:
            grant = uow.grants.get(seen.grant_id)
            if grant is None or not grant.state.is_settling:
                continue
            if permanent and grant.state is GrantState.PENDING:
                failed = grant.moved_to(GrantState.FAILED, now, failure_reason=reason)
                uow.grants.save(failed)
                uow.audit.append(grant_event(now, actor, AuditAction.GRANT_FAILED, failed))
            else:
                waiting = replace(grant, failure_reason=reason, updated_at=now)
                uow.grants.save(waiting)
                event = grant_event(now, actor, AuditAction.GRANT_RETRY_LATER, waiting)
                uow.audit.append(event)
        uow.commit()


def planned_steps(
    deps: Dependencies, names: ManagedNames, document: PolicyDocument | None
) -> list[Step]:
    """What converging towards `document` would do now: for a dry run, and to refuse a grant
    that cannot be carried before anything is written."""
    observed = observe(deps, names)
    adopted = adoption_of(deps, names, observed)
    if adopted is None:
        return plan(names, document, observed)
    return plan_adopted(names, document, observed, adopted)
