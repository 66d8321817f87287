"""Convergence: make AWS hold exactly what an instance's live grants need, and settle them.

The story of one convergence, under the instance's lock: read the desired state from the
grants, observe AWS, let the domain plan the steps (adoption is a variant of the plan), carry
them out one by one, each recorded as soon as it is done (steps.py), then move the grants to
the state AWS now reflects. Every step is idempotent, so an interrupted convergence is finished
by converging again. `settle` is the pipeline's last step: it records what a handler decided
(its Intent), after checking that it can be carried when it adds a grant, and converges.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from broker.domain.access import GrantState
from broker.domain.audit import (
    AuditAction,
    NewAuditEvent,
    grant_event,
    settled_event,
    step_event,
)
from broker.domain.boundary import boundary_in
from broker.domain.convergence import (
    AdoptedRole,
    AssociationInfo,
    ObservedState,
    RecordedState,
    Step,
    StepKind,
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
    InstanceNotFound,
    PolicyTooLarge,
)
from broker.domain.grants import Grant, GrantScope, InstanceResources
from broker.domain.guardrails import check_guardrails
from broker.domain.naming import ManagedNames
from broker.domain.places import InstanceRef, Place
from broker.domain.policy import (
    UNBOUND,
    Binding,
    PolicyDocument,
    build_policy,
    check_size,
    render,
)
from broker.domain.quotas import DEFAULT_HEADROOM
from broker.service import deadlines
from broker.service.commands import GrantResult
from broker.service.idempotency import IdempotencyKey
from broker.service.ports import (
    AccountsSource,
    AwsAccounts,
    BoundariesSource,
    Clock,
    Ec2,
    Iam,
    InstanceInfo,
    InstanceLocks,
    InstanceRecord,
    NoTelemetry,
    Telemetry,
    UnitOfWorkFactory,
)
from broker.service.quotas import AccountUsages
from broker.service.steps import (
    Observation,
    StepRecorder,
    StepRunner,
    adopted_record,
    as_recorded,
    observe,
    observed_record,
    presumed,
    record_after,
)

log = logging.getLogger(__name__)

UNRECORDED_NOTE = (
    "found done in AWS but not in the broker's record: made by an interrupted convergence, "
    "or by someone else"
)

ADOPTED_BOUNDARY_NOTE = (
    "none of the broker's: an adopted role keeps the permissions boundary its owner gave it, "
    "and is not repaired as boundary drift"
)

# Errors after which retrying cannot help: the instance's pending grants fail with the reason.
PERMANENT_ERRORS = (ForeignProfile, ForeignRole, AwsRejected, PolicyTooLarge, GuardrailViolation)
# Errors that only postpone the work: the grants wait, with the reason, for the reconciler.
POSTPONING_ERRORS = (AwsUnavailable, DeadlineExceeded)
# How a convergence ended, for the metrics and its span.
CONVERGED, POSTPONED, FAILED = "converged", "postponed", "failed"
# The span of one convergence of one instance (waiting for its lock included).
CONVERGENCE_SPAN = "accessbroker.converge"


@dataclass(frozen=True)
class Intent:
    """What a handler decided about one grant: the changes to record for it in one transaction
    (none, for a grant that only needs settling), for the pipeline's settle step."""

    grant: Grant
    # A grant to add: planned first, and refused before anything is written.
    new: bool = False
    # Whether `grant` is to be saved as it is here.
    changed: bool = False
    events: tuple[NewAuditEvent, ...] = ()
    # Set when a broader live grant already gave what was asked: `grant` is that grant.
    covered_by: str = ""
    # The instance's live grants as the handler read them, if it did: an intent that changes
    # nothing is reported from them, without reading them again.
    read_grants: tuple[Grant, ...] | None = None
    # Why the request changed nothing, when the caller should hear it.
    notice: str = ""
    # A grant that joins the instance's policy now (an approved request): checked first, and
    # refused before anything is written, as a new one is.
    admits: bool = False

    @property
    def changes_nothing(self) -> bool:
        return not (self.new or self.changed or self.events)


@dataclass(frozen=True)
class Desired:
    grants: list[Grant]
    # The scopes of the live grants, and the policy that grants them.
    scopes: list[GrantScope]
    document: PolicyDocument | None
    # Pending or active grants past their expiry: left out of the document, settled as EXPIRED.
    expired: frozenset[str] = frozenset()


_OUTCOMES_KEPT = 100


@dataclass
class _Rounds:
    """The convergence rounds of one instance: begun, ended, running, and how recent ones
    ended (None: converged; else what stopped them)."""

    started: int = 0
    finished: int = 0
    running: bool = False
    outcomes: dict[int, BaseException | None] = field(default_factory=dict)
    # Requests waiting on or leading a round; the entry goes when none is left.
    members: int = 0


class ConvergenceRounds:
    """Group commit for convergence: a request whose intent is recorded while a convergence of
    its instance runs does not start one of its own after it; the first of the waiting requests
    leads the next round, which carries out every intent recorded by then, and each waiting
    request gets that round's outcome."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._rounds: dict[str, _Rounds] = {}

    def join(self, instance_id: str, run: Callable[[], None]) -> None:
        """Returns once a round that began after this call has ended, raising what stopped it.
        `run()` is the convergence, called by whichever request leads the round."""
        with self._changed:
            rounds = self._rounds.setdefault(instance_id, _Rounds())
            rounds.members += 1
            wanted = rounds.started + 1
            try:
                while rounds.finished < wanted:
                    if rounds.running:
                        self._wait()
                    else:
                        self._lead(rounds, run)
                outcome = rounds.outcomes[wanted]
            finally:
                rounds.members -= 1
                if rounds.members == 0:
                    del self._rounds[instance_id]
        if outcome is not None:
            raise outcome

    def waiting(self, instance_id: str) -> int:
        """Requests waiting on or leading a round of the instance."""
        with self._changed:
            rounds = self._rounds.get(instance_id)
            return rounds.members if rounds else 0

    def _wait(self) -> None:
        left = deadlines.seconds_left()
        if left is not None and left <= 0:
            raise DeadlineExceeded(
                "the caller's deadline passed waiting for the instance's convergence; "
                "recorded work is finished by the broker's background sweep"
            )
        self._changed.wait(left)

    def _lead(self, rounds: _Rounds, run: Callable[[], None]) -> None:
        """Runs a round with the condition's lock released; the caller holds it."""
        rounds.started += 1
        number, rounds.running = rounds.started, True
        outcome: BaseException | None = None
        self._changed.release()
        try:
            run()
        except BaseException as error:  # every member of the round hears of it
            outcome = error
        finally:
            self._changed.acquire()
            rounds.running, rounds.finished = False, number
            rounds.outcomes[number] = outcome
            # A member reads its round's outcome as soon as it wakes; keep a few in hand.
            rounds.outcomes.pop(number - _OUTCOMES_KEPT, None)
            self._changed.notify_all()


class Convergence:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        aws: AwsAccounts,
        clock: Clock,
        locks: InstanceLocks,
        role_path: str,
        # The home account's accessbroker-boundary; a spoke's is the policy of that name there.
        permissions_boundary: str = "",
        adopt_foreign_profiles: bool = False,
        telemetry: Telemetry | None = None,
        accounts: AccountsSource,
        quota_headroom: float = DEFAULT_HEADROOM,
        binding: Binding = UNBOUND,
        boundaries: BoundariesSource | None = None,
    ) -> None:
        self._uow, self._aws, self._clock = uow, aws, clock
        self._telemetry = telemetry or NoTelemetry()
        self._locks, self._role_path = locks, role_path
        self._boundary, self._adopts = permissions_boundary, adopt_foreign_profiles
        self._recorder = StepRecorder(uow, clock)
        self._rounds = ConvergenceRounds()
        self._accounts = accounts
        # Each account's boundary as read: a new grant it would cut is refused.
        self._boundaries = boundaries
        # The conditions every statement carries (BROKER_REQUIRE_IMDSV2, ..._BIND_CREDENTIALS).
        self.binding = binding
        # Each account's IAM usage, for the quota headroom; the sweep reads it too.
        self.usages = AccountUsages(self._telemetry, quota_headroom)

    def names(self, instance: InstanceRef) -> ManagedNames:
        boundary = boundary_in(self._boundary, instance.place.account)
        return ManagedNames(instance, self._role_path, boundary)

    def iam(self, place: Place) -> Iam:
        return self._aws.iam(place.account)

    def ec2(self, place: Place) -> Ec2:
        return self._aws.ec2(place)

    @property
    def adopts_foreign_profiles(self) -> bool:
        return self._adopts

    # -- the pipeline's settle step -------------------------------------------------------------

    def preview(self, intent: Intent) -> GrantResult:
        """A dry run: the policy the instance would hold, and the steps still owed to get there;
        a grant that cannot be carried is refused here, as it would be for real."""
        document, steps, _ = self._admit(intent, preview=True)
        return GrantResult(
            intent.grant,
            render(document) if document else "",
            tuple(step.describe() for step in steps),
            covered_by=intent.covered_by,
        )

    def look_up(self, instance: InstanceRef) -> InstanceInfo:
        """The instance as EC2 shows it; InstanceNotFound when it does not exist."""
        found = self.ec2(instance.place).find_instance(instance.instance_id)
        if found is None:
            raise InstanceNotFound(str(instance))
        return found

    def check(self, intent: Intent, instance: InstanceInfo | None = None) -> Observation | None:
        """Refuses, writing nothing, a new grant that cannot be carried; answers what it saw of
        AWS to check, for the convergence that follows. `instance`: the grant's instance as EC2
        showed it a moment ago (else it is looked up)."""
        if not (intent.new or intent.admits):
            return None
        return self._admit(replace(intent, new=True), instance)[2]

    def record(self, intent: Intent, key: IdempotencyKey) -> None:
        """Records the intent, with its idempotency key, in one transaction (under the
        instance's lock, held by the pipeline)."""
        if intent.changes_nothing and not key.key:
            return
        with self._uow() as uow:
            if intent.new:
                uow.grants.add(intent.grant)
            elif intent.changed:
                uow.grants.save(intent.grant)
            for event in intent.events:
                uow.audit.append(event)
            key.remember(uow, intent.grant.grant_id, self._clock.now())
            uow.commit()

    def settle(self, intent: Intent, actor: str, seen: Observation | None = None) -> GrantResult:
        """Converges the instance if the recorded grant waits for it, and reports the grant as
        it then stands. Requests recorded while a convergence of their instance runs are carried
        out together by the next one (see ConvergenceRounds): N grants at once cost about two
        rounds, not N. A round starts from what check() saw (`seen`) while no convergence has
        changed the instance since, else from the broker's record."""
        grant = self._current(intent.grant.grant_id)
        if grant.state.is_settling:
            instance = grant.instance

            def converge_round() -> None:
                with self._locks.hold(instance.key):
                    self.converge(instance, actor, start=self._round_start(instance, seen))

            self._rounds.join(instance.key, converge_round)
            grant = self._current(grant.grant_id)
        return self.report(replace(intent, grant=grant))

    def _round_start(self, instance: InstanceRef, seen: Observation | None) -> Observation | None:
        """Under the instance's lock: `seen` while no convergence step has been taken since it
        was (each step rewrites the record), else what the record says now, presumed (a write
        AWS refuses then makes the round observe AWS in full)."""
        names = self.names(instance)
        record = self._record(names)
        if seen is not None and seen.record == record:
            return seen
        if record is None or self._adopts:
            return None
        association = self.ec2(instance.place).get_association(instance.instance_id)
        return presumed(names, record, association)

    def report(self, intent: Intent) -> GrantResult:
        """The intent's grant as it stands, with the instance's whole policy."""
        if intent.changes_nothing and intent.read_grants is not None:
            document = self._desired_of(list(intent.read_grants)).document
        else:
            document = self.desired(intent.grant.instance).document
        policy = render(document) if document else ""
        return GrantResult(intent.grant, policy, covered_by=intent.covered_by, notice=intent.notice)

    def _admit(
        self, intent: Intent, instance: InstanceInfo | None = None, *, preview: bool = False
    ) -> tuple[PolicyDocument | None, list[Step], Observation | None]:
        """The policy with the intent's grant, the steps towards it, and what was seen of AWS to
        plan them; raises, writing nothing, when the grant cannot be carried."""
        grant, names = intent.grant, self.names(intent.grant.instance)
        desired = self.desired(grant.instance)
        if not intent.new:
            if not grant.state.is_settling:
                return desired.document, [], None
            seen = self.observe(names)
            return desired.document, plan(names, desired.document, seen.own, seen.adopted), seen
        if not self._adopts:  # no AWS read needed to know the grant is refused
            self._check_boundary(grant)
        instance = instance or self.look_up(grant.instance)
        document = build_policy([*desired.scopes, grant.scope], self.binding)
        check_size(document)
        seen = self._admission_view(names, instance, desired)
        # Planning refuses a foreign profile or role before anything is written.
        steps = plan(names, document, seen.own, seen.adopted)
        if self._adopts and seen.adopted is None:  # an adopted role has its owner's boundary
            self._check_boundary(grant)
        if any(step.kind is StepKind.CREATE_ROLE for step in steps):
            # A grant that needs a new role is refused when the account's roles or instance
            # profiles would eat into the headroom kept free (BROKER_ROLE_QUOTA_HEADROOM).
            account = self._accounts.current().account_of(grant.place)
            self.usages.admit_new_role(account, self.iam(grant.place), counted=not preview)
        return document, steps, seen

    def _check_boundary(self, grant: Grant) -> None:
        """Refuses a grant the account's boundary would cut: an ACTIVE grant the instance is
        refused would mislead everyone."""
        if self._boundaries is None:
            return
        account = self._accounts.current().account_of(grant.place)
        self._boundaries.current().check(account, grant.scope)

    def _admission_view(
        self, names: ManagedNames, instance: InstanceInfo, desired: Desired
    ) -> Observation:
        """What AWS holds, for a new grant: from the record when the profile EC2 shows on the
        instance is the one the record names, or none at all, and either the record is complete
        or grants admitted before this one wait for the instance's convergence (their admission
        read AWS, and the record has every step done since); otherwise read from AWS (the
        associations only when EC2 shows a profile)."""
        record = self._record(names)
        seen = self._admission_observation(names, instance, desired, record)
        return replace(seen, record=record)

    def _admission_observation(
        self,
        names: ManagedNames,
        instance: InstanceInfo,
        desired: Desired,
        record: InstanceRecord | None,
    ) -> Observation:
        held = record.resources if record is not None else InstanceResources()
        ours = bool(held.profile_arn) and instance.profile_arn == held.profile_arn
        association = (
            AssociationInfo(held.association_id, names.instance_id, instance.profile_arn)
            if ours
            else None
        )
        seen = presumed(names, record, association) if ours else None
        if seen is not None:
            return seen
        admitted = any(g.state is GrantState.PENDING for g in desired.grants)
        if admitted and not self._adopts and (ours or not instance.profile_arn):
            return as_recorded(names, record, association)
        return self.observe(names, unassociated=not instance.profile_arn)

    def _record(self, names: ManagedNames) -> InstanceRecord | None:
        with self._uow(read_only=True) as uow:
            return uow.instances.get(names.instance)

    def _current(self, grant_id: str) -> Grant:
        with self._uow(read_only=True) as uow:
            grant = uow.grants.get(grant_id)
        assert grant is not None, "a grant is never deleted"
        return grant

    # -- converging ---------------------------------------------------------------------------

    def desired(self, instance: InstanceRef) -> Desired:
        """What AWS should hold now: a grant past its expiry no longer counts, swept or not yet."""
        with self._uow(read_only=True) as uow:
            grants = uow.grants.for_instance(instance)
        return self._desired_of(grants)

    def _desired_of(self, grants: list[Grant]) -> Desired:
        now = self._clock.now()
        scopes = [g.scope for g in grants if g.is_live(now)]
        expired = frozenset(g.grant_id for g in grants if g.state.is_desired and g.has_expired(now))
        return Desired(grants, scopes, build_policy(scopes, self.binding), expired)

    def converge(self, instance: InstanceRef, actor: str, start: Observation | None = None) -> None:
        """Converges under the instance's lock; raises what stopped it after recording it.

        `start` is what AWS holds as already seen (or presumed from the record); without it,
        AWS is observed in full. After a permanent failure the failed grants no longer count,
        so convergence runs once more to withdraw whatever of theirs already reached AWS.
        """
        traced = self._telemetry.span(CONVERGENCE_SPAN, _span_attributes(instance))
        with traced as span, self._locks.hold(instance.key):
            started, outcome = time.monotonic(), FAILED
            try:
                self._converge_withdrawing(instance, actor, start)
                outcome = CONVERGED
            except POSTPONING_ERRORS:
                outcome = POSTPONED
                raise
            finally:
                self._telemetry.convergence_took(time.monotonic() - started, outcome)
                span.set_attribute("accessbroker.outcome", outcome)

    def _converge_withdrawing(
        self, instance: InstanceRef, actor: str, start: Observation | None
    ) -> None:
        try:
            self._converge_once(instance, actor, start)
        except PERMANENT_ERRORS:
            try:
                self._converge_once(instance, actor, start=None)
            except BrokerError:
                log.warning("could not withdraw failed grants of %s yet", instance, exc_info=True)
            raise

    def observe(self, names: ManagedNames, *, unassociated: bool = False) -> Observation:
        place = names.instance.place
        return observe(
            self.iam(place),
            self.ec2(place),
            names,
            adopt_foreign_profiles=self._adopts,
            unassociated=unassociated,
        )

    def _converge_once(self, instance: InstanceRef, actor: str, start: Observation | None) -> None:
        names = self.names(instance)
        desired = self.desired(instance)
        try:
            check_size(desired.document)
            check_guardrails(desired.document, desired.scopes, self.binding)
            resources = self._carry_out(names, desired.document, start, actor)
        except POSTPONING_ERRORS as error:
            self._note_failure(desired.grants, actor, str(error), permanent=False)
            raise
        except PERMANENT_ERRORS as error:
            self._note_failure(desired.grants, actor, str(error), permanent=True)
            raise
        if self._settle_grants(desired, resources, actor):
            # A grant left out as expired was extended meanwhile: AWS must carry it again.
            self._converge_once(instance, actor, start=None)

    def _carry_out(
        self,
        names: ManagedNames,
        document: PolicyDocument | None,
        start: Observation | None,
        actor: str,
    ) -> InstanceResources:
        """Plans from `start` and carries it out. When it was presumed from the record and AWS
        disagrees (a write refused: the role gone, a policy in the way), AWS is observed in
        full and the plan made again; idempotent steps make the second pass safe."""
        if start is not None and start.presumed:
            try:
                return self._apply(names, document, start, actor)
            except POSTPONING_ERRORS:
                raise
            except BrokerError as disagreement:
                log.info("AWS disagrees with the record of %s (%s)", names.instance, disagreement)
            start = None
        seen = start or self.observe(names)
        self._withdraw_stale_adoption(names, seen.adopted, actor)
        if seen.adopted is None:
            self._record_unrecorded(names, seen.own, actor)
        return self._apply(names, document, seen, actor)

    def _apply(
        self,
        names: ManagedNames,
        document: PolicyDocument | None,
        seen: Observation,
        actor: str,
    ) -> InstanceResources:
        """Carries out the plan, recording each step as soon as AWS has done it."""
        adopted, now = seen.adopted, self._clock.now()
        record = (
            observed_record(names, seen.own, now)
            if adopted is None
            else adopted_record(names, adopted, adopted.policy, now)
        )
        runner = self._runner(names, document)
        for step in plan(names, document, seen.own, seen.adopted):
            on_adopted = adopted is not None and step.target == adopted.role_name
            if on_adopted and step.kind is StepKind.PUT_POLICY:
                assert adopted is not None
                # Named before the put: a crash right after it must not leave the broker's
                # policy on a role its record does not know of, where nothing would withdraw it.
                record = adopted_record(names, adopted, document, self._clock.now())
                self._recorder.save(record)
            resources = runner.run(step, record.resources)
            widens = on_adopted and step.kind is StepKind.PUT_POLICY
            note = _adopted_boundary_note(names) if widens else {}
            if adopted is None:
                record = record_after(
                    names, record, step, resources, document=document, now=self._clock.now()
                )
            elif on_adopted and step.kind is StepKind.DELETE_POLICY:
                record = adopted_record(names, adopted, None, self._clock.now())
            self._recorder.done(step, record, actor, **note)
        return record.resources

    def _record_unrecorded(self, names: ManagedNames, observed: ObservedState, actor: str) -> None:
        """Audits the changes AWS shows that the record lacks, before planning: a change whose
        convergence was killed before recording it would otherwise never reach the trail."""
        with self._uow() as uow:
            recorded = _recorded(uow.instances.get(names.instance))
            found = unrecorded_changes(names, recorded, observed)
            if not found:
                return
            now = self._clock.now()
            for step in found:
                uow.audit.append(
                    step_event(now, actor, names.instance, step, found=UNRECORDED_NOTE)
                )
            uow.instances.save(observed_record(names, observed, now))
            uow.commit()

    def _withdraw_stale_adoption(
        self, names: ManagedNames, adopted: AdoptedRole | None, actor: str
    ) -> None:
        """Removes the broker's policy from a role it adopted earlier that no longer carries the
        instance's grants (its profile was replaced, or taken off the instance)."""
        with self._uow(read_only=True) as uow:
            record = uow.instances.get(names.instance)
        if record is None or not record.policy_document:
            return
        stale = record.resources.role_name
        if stale in ("", names.role_name, adopted.role_name if adopted else ""):
            return
        step = Step(StepKind.DELETE_POLICY, stale, names.policy_name)
        self._runner(names, None).run(step, record.resources)
        emptied = InstanceRecord(
            instance=names.instance,
            resources=InstanceResources(),
            policy_document="",
            updated_at=self._clock.now(),
        )
        self._recorder.done(step, emptied, actor)

    def _runner(self, names: ManagedNames, document: PolicyDocument | None) -> StepRunner:
        place = names.instance.place
        return StepRunner(self.iam(place), self.ec2(place), names, document)

    # -- settling the grants ------------------------------------------------------------------

    def _settle_grants(self, desired: Desired, resources: InstanceResources, actor: str) -> bool:
        """Moves the converged grants to the state AWS now reflects, audited in the same
        transaction. Answers whether a grant left out as expired has been extended since (a
        repeated GrantAccess extends without the instance's lock), which calls for another
        convergence."""
        now, extended = self._clock.now(), False
        with self._uow() as uow:
            for seen in desired.grants:
                grant = uow.grants.get(seen.grant_id)
                if grant is None or grant.state != seen.state:
                    continue  # changed by someone else since; its own convergence settles it
                expired = grant.grant_id in desired.expired
                if expired and not grant.has_expired(now):
                    extended = True
                    continue
                settled = _settled(grant, resources, now, expired=expired)
                if settled != grant:
                    uow.grants.save(settled)
                if settled.state != grant.state:
                    uow.audit.append(settled_event(now, actor, settled))
            uow.commit()
        return extended

    def _note_failure(
        self, grants: list[Grant], actor: str, reason: str, *, permanent: bool
    ) -> None:
        """Pending grants fail on a permanent error; otherwise they wait for the next
        convergence, with the reason: audited when it starts or changes, not at every retry
        (the trail records changes, not repetitions)."""
        now = self._clock.now()
        with self._uow() as uow:
            for seen in grants:
                grant = uow.grants.get(seen.grant_id)
                if grant is None or not grant.state.is_settling:
                    continue
                if permanent and grant.state is GrantState.PENDING:
                    failed = grant.moved_to(GrantState.FAILED, now, failure_reason=reason)
                    uow.grants.save(failed)
                    uow.audit.append(grant_event(now, actor, AuditAction.GRANT_FAILED, failed))
                elif grant.failure_reason != reason:
                    waiting = replace(grant, failure_reason=reason, updated_at=now)
                    uow.grants.save(waiting)
                    event = grant_event(now, actor, AuditAction.GRANT_RETRY_LATER, waiting)
                    uow.audit.append(event)
            uow.commit()


def _span_attributes(instance: InstanceRef) -> dict[str, str]:
    place = instance.place
    return {
        "accessbroker.instance_id": instance.instance_id,
        "accessbroker.region": place.region,
        **({"accessbroker.account": place.account} if not place.is_home_account else {}),
    }


def _adopted_boundary_note(names: ManagedNames) -> dict[str, str]:
    """What the audit says of a change on an adopted role, when roles carry a boundary: not this
    one, which the broker did not create (its boundary, if any, is its owner's)."""
    return {"boundary": ADOPTED_BOUNDARY_NOTE} if names.boundary else {}


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


def _settled(grant: Grant, resources: InstanceResources, now: datetime, *, expired: bool) -> Grant:
    if expired:
        # As a revoked grant: it holds no resources any more, the audit trail keeps what did.
        return grant.moved_to(GrantState.EXPIRED, now).with_resources(InstanceResources(), now)
    if grant.state is GrantState.PENDING:
        return grant.activated(now).with_resources(resources, now)
    if grant.state is GrantState.REVOKING:
        # A revoked grant holds no resources; the audit trail keeps what once carried it.
        return grant.moved_to(GrantState.REVOKED, now).with_resources(InstanceResources(), now)
    if grant.resources != resources:
        return grant.with_resources(resources, now)
    return grant
