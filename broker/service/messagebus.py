"""The pipeline every command goes through, in the same order, each step in one place:

    locate       command.located(): account and region    commands.py
    validate     command.validate()                      commands.py
    authorize    Authorizer.authorize(); refusals audited authorization.py (the RULES table)
    idempotency  a retry gets the first result            idempotency.py
    handler      the command's own logic                  granting.py, revoking.py,
                                                          approving.py, queries.py, drift.py,
                                                          sweeps.py
    lock         the instance a changing command is about InstanceLocks (ports.py)
    settle       record the handler's Intent, converge    convergence.py

A grant, a revocation or an approval is decided first without any lock: when that decision
changes nothing (a retry of finished work, a repeat of a live grant, a dry run), it is the
answer, and nothing waits or writes. Otherwise it is decided again, and recorded, under the
instance's admission lock, and then settled: it joins the instance's next convergence round,
which runs under the instance's own lock and carries every grant recorded before it began
(convergence.py). An extension holds both locks throughout; a denial the admission lock;
reads take none.

Handlers are plain functions `handler(command, context, **ports)`; bootstrap.py gives each the
ports it names and hands the bus the result, one handler per command type.
"""

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from broker.domain.audit import AuditAction, refusal_event
from broker.domain.errors import BrokerError, PermissionDenied
from broker.domain.grants import GrantLimits
from broker.domain.places import InstanceRef
from broker.service.authorization import RULES, Authorizer, Permit
from broker.service.commands import (
    ApproveGrant,
    Command,
    DenyGrant,
    ExtendGrant,
    GrantAccess,
    GrantResult,
    RevokeAccess,
)
from broker.service.convergence import Convergence, Intent
from broker.service.delegation import acting_via
from broker.service.idempotency import IdempotencyKey, key_for
from broker.service.ports import (
    AccountsSource,
    Clock,
    InstanceInfo,
    InstanceLocks,
    NoTelemetry,
    Telemetry,
    UnitOfWorkFactory,
)
from broker.service.steps import Observation

Result = TypeVar("Result")
T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """What the pipeline established before the handler runs."""

    permit: Permit
    key: IdempotencyKey
    # Authorizes the command again (and audits a refusal): for a feed that outlives a reload.
    recheck: Callable[[], Permit]


# A handler with its ports given: it takes the command and its context.
Handler = Callable[[Any, Context], Any]


class MessageBus:
    def __init__(
        self,
        *,
        handlers: Mapping[type[Command[Any]], Handler],
        authorizer: Authorizer,
        convergence: Convergence,
        locks: InstanceLocks,
        uow: UnitOfWorkFactory,
        clock: Clock,
        limits: GrantLimits,
        accounts: AccountsSource,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._handlers, self._authorizer, self._convergence = handlers, authorizer, convergence
        self._accounts = accounts
        self._locks, self._uow, self._clock, self._limits = locks, uow, clock, limits
        self._telemetry = telemetry or NoTelemetry()

    def handle(self, command: Command[Result]) -> Result:
        with acting_via(command.via):
            return self._handle(command)

    def _handle(self, command: Command[Result]) -> Result:
        command = command.located(self._accounts.current())
        command.validate(self._limits)
        permit = self._authorized(command)
        key = key_for(command, permit)
        context = Context(permit, key, lambda: self._authorized(command))
        if not isinstance(command, GrantAccess | RevokeAccess | ApproveGrant):
            with self._locked(command, permit):
                return cast(Result, self._handled(command, context))
        # Decided first without the instance's lock: a request that changes nothing (a retry of
        # one that is done, a repeat of a live grant, a dry run) is answered at once, and writes
        # nothing. Reads never wait for a convergence.
        decided = self._decided_unlocked(command, context)
        if isinstance(decided, GrantResult):
            return cast(Result, decided)
        # EC2 is asked about a new grant's instance before the admission lock: admissions then
        # queue only for their database work, and a burst of grants is recorded in time to be
        # carried by the round after the one running.
        instance = self._instance_of(command, decided)
        with self._locked(command, permit):
            # Decided again under the lock: what was read without it may have changed since.
            intent, seen = self._recorded(command, context, instance)
        return cast(Result, self._convergence.settle(intent, command.actor, seen))

    def _handled(self, command: Command[Any], context: Context) -> Any:
        handler = self._handlers[type(command)]
        return self._refusals_audited(command, lambda: handler(command, context))

    def _decided_unlocked(
        self, command: Command[Any], context: Context
    ) -> GrantResult | Intent | None:
        """The answer to a request that changes nothing; else what the handler decided without
        the lock (None for a retry that only settling is left of)."""
        earlier = self._earlier(command, context.key)
        if earlier is not None:
            return None if earlier.grant.state.is_settling else self._convergence.report(earlier)
        intent: Intent = self._handled(command, context)
        if _is_dry_run(command):
            return self._refusals_audited(command, lambda: self._convergence.preview(intent))
        if intent.changes_nothing and not context.key.key and not intent.grant.state.is_settling:
            return self._convergence.report(intent)
        return intent

    def _instance_of(self, command: Command[Any], decided: Intent | None) -> InstanceInfo | None:
        """The instance of a new grant, as EC2 shows it; InstanceNotFound, audited, if none."""
        if decided is None or not decided.new:
            return None
        instance = decided.grant.instance
        return self._refusals_audited(command, lambda: self._convergence.look_up(instance))

    def _recorded(
        self, command: Command[Any], context: Context, instance: InstanceInfo | None
    ) -> tuple[Intent, Observation | None]:
        """The intent, recorded with its key, and what was seen of AWS to admit it; a retry's
        first attempt recorded everything already, and only settling may be left."""
        earlier = self._earlier(command, context.key)
        if earlier is not None:
            return earlier, None
        intent: Intent = self._handled(command, context)
        seen = self._refusals_audited(command, lambda: self._convergence.check(intent, instance))
        self._convergence.record(intent, context.key)
        return intent, seen

    def _authorized(self, command: Command[Any]) -> Permit:
        name = type(command).__name__
        try:
            permit = self._refusals_audited(command, lambda: self._authorizer.authorize(command))
        except PermissionDenied:
            self._telemetry.authorization_decided(name, allowed=False)
            raise
        self._telemetry.authorization_decided(name, allowed=True)
        return permit

    @contextmanager
    def _locked(self, command: Command[Any], permit: Permit) -> Iterator[None]:
        """A command that changes an instance's grants is admitted under the instance's
        admission lock: admissions never interleave, so each sees every grant admitted before
        it. A grant or a revocation does not wait for a convergence running meanwhile (the
        next round carries it); an extension holds the instance's lock too, so that no
        convergence can expire the grant it extends."""
        instance = _changed_instance(command, permit)
        if instance is None:
            yield
            return
        with self._locks.hold(admission_lock(instance)):
            if isinstance(command, ExtendGrant):
                with self._locks.hold(instance.key):
                    yield
            else:
                yield

    def _earlier(self, command: Command[Any], key: IdempotencyKey) -> Intent | None:
        """The first attempt's grant, when this is a retry under the same key. A dry run shows
        what would happen now; it still refuses a key used for a different request."""
        if not key.key:
            return None
        with self._uow(read_only=True) as uow:
            grant_id = key.earlier(uow)
            grant = uow.grants.get(grant_id) if grant_id else None
        if grant is None or _is_dry_run(command):
            return None
        return Intent(grant)

    def _refusals_audited(self, command: Command[Any], step: Callable[[], T]) -> T:
        """Runs a step of the pipeline; a refusal of the command enters the audit trail before
        it reaches the caller."""
        rule = RULES[type(command)]
        try:
            return step()
        except rule.refused_by as refusal:
            if rule.refusal is not None:
                self._audit_refusal(command, rule.refusal, refusal)
            raise

    def _audit_refusal(
        self, command: Command[Any], action: AuditAction, refusal: BrokerError
    ) -> None:
        instance, named = _refused(command, refusal)
        event = refusal_event(
            self._clock.now(), command.actor, action, str(refusal), instance=instance, **named
        )
        with self._uow() as uow:
            uow.audit.append(event)
            uow.commit()


def _refused(
    command: Command[Any], refusal: BrokerError
) -> tuple[InstanceRef | None, dict[str, str]]:
    """What the refusal's audit event names: a grant request's instance and scope; another's
    grant and its instance."""
    if isinstance(command, GrantAccess):
        access = command.access.value if command.access else ""
        scope = {"bucket": command.bucket, "prefix": command.prefix, "access": access}
        return InstanceRef(command.where, command.instance_id), scope
    assert isinstance(refusal, PermissionDenied), "only grant requests have other refusals"
    return refusal.instance, {"grant_id": refusal.grant_id}


def _is_dry_run(command: Command[Any]) -> bool:
    return isinstance(command, GrantAccess) and command.dry_run


def admission_lock(instance: InstanceRef) -> str:
    """The name of the instance's admission lock, beside its own (held while converging)."""
    return f"admission:{instance.key}"


def _changed_instance(command: Command[Any], permit: Permit) -> InstanceRef | None:
    if isinstance(command, GrantAccess):
        return InstanceRef(command.where, command.instance_id)
    if isinstance(command, RevokeAccess | ExtendGrant | ApproveGrant | DenyGrant):
        return permit.the_grant().instance
    return None
