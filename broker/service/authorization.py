"""Who may run which command: one table, and the checks behind each row.

The pipeline asks `Authorizer.authorize(command)` once per command, after validation. It reads
the access policy in force once, decides, and answers a Permit (what the handler may rely on)
or raises PermissionDenied saying why; the pipeline audits the refusal.
"""

from dataclasses import dataclass, replace
from datetime import timedelta
from enum import Enum

from broker.domain.approval import ApprovalRule
from broker.domain.audit import SYSTEM_ACTOR, AuditAction
from broker.domain.authorization import AccessPolicy, AccessRequest, Decision, decide
from broker.domain.errors import (
    BrokerError,
    ForeignProfile,
    ForeignRole,
    GrantNotFound,
    InstanceNotFound,
    PermissionDenied,
    PolicyTooLarge,
    WrongState,
)
from broker.domain.grants import Grant, GrantLimits, GrantRequest, GrantScope
from broker.domain.places import InstanceRef
from broker.service.commands import (
    ApproveGrant,
    Command,
    DeliverNotifications,
    DenyGrant,
    DescribeInstanceAccess,
    ExpireGrants,
    ExplainAccess,
    ExtendGrant,
    FinishSettling,
    GetGrant,
    GrantAccess,
    ListAuditEvents,
    ListDeliveries,
    ListGrants,
    MeasureQuotas,
    Reconcile,
    RemoveOrphans,
    RepairDrift,
    RevokeAccess,
    TrackDestinations,
    WatchAuditEvents,
)
from broker.service.ports import AccountsSource, AwsAccounts, PolicySource, UnitOfWorkFactory


class Who(Enum):
    ANYONE = "any caller; one that is not an admin sees only its own grants"
    OWNER = "the caller that requested the grant, or an admin"
    OWNER_WITHIN_POLICY = "the grant's requester or an admin, as far as the policy allows now"
    OWNER_OR_APPROVER = "the grant's requester, an admin, or an approver of the request"
    APPROVER = "an approver the request's rule names; never its requester, admins included"
    POLICY = "a caller the access policy allows (an admin, or one a rule matches)"
    ADMIN = "an admin"
    SYSTEM = "the broker itself: its background sweep"


@dataclass(frozen=True)
class Rule:
    who: Who
    # What a refusal is audited as (None: the command is never refused).
    refusal: AuditAction | None = None
    # What the caller tried, in the refusal's words: "revoke", "read the audit trail".
    doing: str = ""
    # Errors that refuse the command rather than fail it: audited as `refusal` too.
    refused_by: tuple[type[BrokerError], ...] = (PermissionDenied,)


# A valid grant request is also refused when it cannot be carried: nothing is written then.
_GRANT_REFUSALS = (PermissionDenied, InstanceNotFound, ForeignProfile, ForeignRole, PolicyTooLarge)
_AUDIT = "read the audit trail"

RULES: dict[type[Command[object]], Rule] = {
    GrantAccess: Rule(Who.POLICY, AuditAction.GRANT_REJECTED, refused_by=_GRANT_REFUSALS),
    ExtendGrant: Rule(Who.OWNER_WITHIN_POLICY, AuditAction.GRANT_EXTEND_DENIED, "extend"),
    RevokeAccess: Rule(Who.OWNER, AuditAction.GRANT_REVOKE_DENIED, "revoke"),
    GetGrant: Rule(Who.OWNER_OR_APPROVER, AuditAction.GRANT_READ_DENIED, "read"),
    ApproveGrant: Rule(Who.APPROVER, AuditAction.GRANT_DECISION_DENIED, "approve"),
    DenyGrant: Rule(Who.APPROVER, AuditAction.GRANT_DECISION_DENIED, "deny"),
    ListGrants: Rule(Who.ANYONE),
    DescribeInstanceAccess: Rule(Who.ANYONE),
    ListAuditEvents: Rule(Who.ADMIN, AuditAction.AUDIT_READ_DENIED, _AUDIT),
    # Checked again at every event: a policy reloaded while a feed is open applies to it.
    WatchAuditEvents: Rule(Who.ADMIN, AuditAction.AUDIT_READ_DENIED, _AUDIT),
    # They report on (and repair) every caller's grants.
    Reconcile: Rule(Who.ADMIN, AuditAction.RECONCILE_DENIED, "reconcile AWS with the grants"),
    ExplainAccess: Rule(Who.ADMIN, AuditAction.EXPLAIN_DENIED, "explain access decisions"),
    ExpireGrants: Rule(Who.SYSTEM),
    FinishSettling: Rule(Who.SYSTEM),
    RemoveOrphans: Rule(Who.SYSTEM),
    RepairDrift: Rule(Who.SYSTEM),
    MeasureQuotas: Rule(Who.SYSTEM),
    DeliverNotifications: Rule(Who.SYSTEM),
    TrackDestinations: Rule(Who.SYSTEM),
    ListDeliveries: Rule(
        Who.ADMIN, AuditAction.NOTIFICATIONS_READ_DENIED, "read the notification deliveries"
    ),
}


@dataclass(frozen=True)
class Permit:
    """What authorization established, for the handler to rely on."""

    actor: str
    # The policy in force when the command arrived; the whole command is decided with it.
    policy: AccessPolicy
    # OWNER rules: the grant, loaded to see whose it is.
    grant: Grant | None = None
    # POLICY: the request with the ttl the policy gives it, and what allowed it (for the trail).
    request: GrantRequest | None = None
    reason: str = ""
    # POLICY: set when the rule that allows the request asks for approval first.
    approval: ApprovalRule | None = None
    # APPROVER: the approval the policy in force asks of the grant's request, decided once for
    # the command; None when the policy no longer allows the request.
    asked_now: ApprovalRule | None = None

    @property
    def is_admin(self) -> bool:
        return self.policy.is_admin(self.actor)

    def may_act_on(self, grant: Grant) -> bool:
        return self.policy.may_act_on(self.actor, grant.requested_by)

    def the_grant(self) -> Grant:
        assert self.grant is not None, "only an OWNER rule's permit names a grant"
        return self.grant

    def the_request(self) -> GrantRequest:
        assert self.request is not None, "only a POLICY rule's permit carries a request"
        return self.request


class Authorizer:
    def __init__(
        self,
        policy: PolicySource,
        uow: UnitOfWorkFactory,
        aws: AwsAccounts,
        accounts: AccountsSource,
        limits: GrantLimits,
    ) -> None:
        self._policy, self._uow, self._aws, self._limits = policy, uow, aws, limits
        self._accounts = accounts

    def authorize(self, command: Command[object]) -> Permit:
        """The permit to run `command`; PermissionDenied saying why when it is refused."""
        rule = RULES[type(command)]
        permit = Permit(command.actor, self._policy.current())
        if command.via and command.via not in permit.policy.delegates:
            raise PermissionDenied(
                f"{command.via} may not act on behalf of others: it is not one of the access "
                "policy's delegates"
            )
        if rule.who is Who.ANYONE:
            return permit
        if rule.who is Who.ADMIN:
            return self._admin(permit, rule)
        if rule.who is Who.SYSTEM:
            return self._system(permit)
        if isinstance(command, GrantAccess):
            return self._allowed(permit, command)
        if isinstance(command, ApproveGrant | DenyGrant):
            return self._approver(permit, command.grant_id)
        assert isinstance(command, GetGrant | RevokeAccess | ExtendGrant), rule
        owned = self._owner(permit, rule, command.grant_id)
        if isinstance(command, ExtendGrant):
            self._within_policy(owned, command.extension)
        return owned

    def decide(
        self, policy: AccessPolicy, identity: str, request: GrantRequest, ttl: timedelta | None
    ) -> Decision:
        """The policy's decision on `identity` having the request's scope on its instance, for
        `ttl` (None: the server's default)."""
        tags = self._tags(policy, identity, request.instance)
        access = self._access_request(identity, request.instance, request.scope, tags, ttl)
        return decide(policy, access)

    def _admin(self, permit: Permit, rule: Rule) -> Permit:
        if not permit.is_admin:
            raise PermissionDenied(f"only an admin may {rule.doing}")
        return permit

    def _system(self, permit: Permit) -> Permit:
        # Callers can never be "system" (a reserved identity): only the sweep sends these.
        if permit.actor != SYSTEM_ACTOR:
            raise PermissionDenied("only the broker's own sweep may run this")
        return permit

    def _allowed(self, permit: Permit, command: GrantAccess) -> Permit:
        request = command.request(self._limits)
        decision = self.decide(permit.policy, permit.actor, request, command.ttl)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        return replace(
            permit,
            request=replace(request, ttl=decision.ttl),
            reason=decision.reason,
            approval=decision.approval,
        )

    def _asked_now(self, policy: AccessPolicy, grant: Grant) -> ApprovalRule | None:
        """The approval `policy` asks of the grant's request now: who may approve and how many
        must (when it allows the request without approval now, one approval by the request's
        own approvers is enough). None when it no longer allows the request at all."""
        approval = grant.the_approval()
        request = GrantRequest(
            grant.instance_id, grant.scope, None, grant.reason, grant.requested_by, grant.place
        )
        decision = self.decide(policy, grant.requested_by, request, approval.ttl)
        if not decision.allowed:
            return None
        return decision.approval or ApprovalRule(approval.approvers)

    def _approver(self, permit: Permit, grant_id: str) -> Permit:
        grant = self._grant(grant_id)
        if grant.approval is None:
            raise WrongState(grant.grant_id, grant.state.value, "it needed no approval")
        # Who decides is the policy's now; a request it no longer allows is still denied by
        # the approvers it named (its approval is refused in the handler).
        asked = self._asked_now(permit.policy, grant)
        approval = grant.approval.under(asked) if asked else grant.approval
        why_not = approval.may_decide(permit.actor, grant.requested_by)
        if why_not is not None:
            raise PermissionDenied(why_not, instance=grant.instance, grant_id=grant.grant_id)
        return replace(permit, grant=grant, asked_now=asked)

    def _grant(self, grant_id: str) -> Grant:
        with self._uow(read_only=True) as uow:
            grant = uow.grants.get(grant_id)
        if grant is None:
            raise GrantNotFound(grant_id)
        return grant

    def _owner(self, permit: Permit, rule: Rule, grant_id: str) -> Permit:
        grant = self._grant(grant_id)
        approver = rule.who is Who.OWNER_OR_APPROVER and _may_decide(permit.actor, grant)
        if not permit.may_act_on(grant) and not approver:
            raise PermissionDenied(
                f"grant {grant.grant_id} was requested by another caller; only it or an admin "
                f"may {rule.doing} it",
                instance=grant.instance,
                grant_id=grant.grant_id,
            )
        return replace(permit, grant=grant)

    def _within_policy(self, permit: Permit, ttl: timedelta) -> None:
        """An extension goes no further than the policy would grant the caller now."""
        grant = permit.the_grant()
        tags = self._tags(permit.policy, permit.actor, grant.instance)
        access = self._access_request(permit.actor, grant.instance, grant.scope, tags, ttl)
        decision = decide(permit.policy, access)
        refusal = _extension_refusal(decision)
        if refusal:
            raise PermissionDenied(refusal, instance=grant.instance, grant_id=grant.grant_id)

    def _access_request(
        self,
        identity: str,
        instance: InstanceRef,
        scope: GrantScope,
        tags: dict[str, str],
        ttl: timedelta | None,
    ) -> AccessRequest:
        account = self._accounts.current().account_of(instance.place)
        return AccessRequest(
            identity=identity,
            scope=scope,
            tags=tags,
            ttl=ttl,
            default_ttl=self._limits.ttl_for(None),
            account=account.aliases,
            account_name=account.name,
        )

    def _tags(self, policy: AccessPolicy, identity: str, instance: InstanceRef) -> dict[str, str]:
        """The instance's tags, asked of EC2 only when a rule could need them."""
        if not policy.reads_instance_tags or policy.is_admin(identity):
            return {}
        found = self._aws.ec2(instance.place).find_instance(instance.instance_id)
        if found is None:
            raise InstanceNotFound(str(instance))
        return found.tags


def _may_decide(identity: str, grant: Grant) -> bool:
    """Whether `identity` is one of the approvers the grant's request named."""
    if grant.approval is None:
        return False
    return grant.approval.may_decide(identity, grant.requested_by) is None


def _extension_refusal(decision: Decision) -> str:
    """Why the policy does not let an extension through ("" when it does): an extension is not
    a request, so what would need approval is refused (ask for a new grant instead)."""
    if not decision.allowed:
        return decision.reason
    if decision.approval is not None:
        return (
            f"extending it that far needs approval ({decision.reason}): request a new grant "
            "for that long instead"
        )
    return ""
