"""The composition root: the one place that builds engines, AWS clients and the message bus,
and reads configuration files, for every command of `access-broker` and the sandbox alike.

`build_runtime` wires real adapters from the settings; `build_bus` wires the service layer over
any Ports (the real ones, or the unit tests' fakes). Each handler is given exactly the ports
its signature names (cosmicpython's inject_dependencies), so no signature hides what it uses.
Entrypoints reach adapters only through the functions here.
"""

import inspect
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from opentelemetry.trace import Tracer
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from broker.adapters.aws.accounts import BotoAccounts
from broker.adapters.aws.clients import StaticCredentials, configured_region
from broker.adapters.aws.iam import BotoIam
from broker.adapters.aws.retry import RetryBudgets, RetryCounter
from broker.adapters.aws.tally import CallTally
from broker.adapters.config.accounts_file import load_accounts_file
from broker.adapters.config.notifications import notifications_from
from broker.adapters.config.policy_file import load_policy_file
from broker.adapters.config.policy_holder import AccountsHolder, BoundariesHolder, PolicyHolder
from broker.adapters.config.tls_files import load_tls_files
from broker.adapters.config.tokens_file import load_tokens_file
from broker.adapters.db.audit_trail import read_audit_chain
from broker.adapters.db.engine import create_engine_for, database_reachable
from broker.adapters.db.locks import DatabaseInstanceLocks
from broker.adapters.db.migrate import pending_migrations, upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.adapters.system import RandomIds, SystemClock
from broker.adapters.telemetry import BrokerTelemetry
from broker.adapters.tracing import Tracing, tracing_from
from broker.adapters.webhooks import HttpPoster
from broker.domain.access import GrantState
from broker.domain.accounts import Account, Accounts
from broker.domain.audit_chain import Anchor, ChainReport, verify_chain
from broker.domain.authorization import UNRESTRICTED, AccessPolicy
from broker.domain.boundary import (
    BOUNDARY_NAME,
    REFUSES_ALL,
    Boundaries,
    BoundaryReach,
    boundary_in,
    boundary_problems,
)
from broker.domain.credentials import StoredToken, TlsFiles
from broker.domain.errors import AwsRejected, AwsUnavailable, StoreUnavailable
from broker.domain.grants import GrantLimits
from broker.domain.naming import DEFAULT_ROLE_PATH
from broker.domain.policy import UNBOUND, Binding
from broker.domain.quotas import DEFAULT_HEADROOM
from broker.release import release
from broker.service.approving import approve_grant, deny_grant
from broker.service.authorization import Authorizer
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
from broker.service.convergence import Convergence
from broker.service.delegation import noting_delegates
from broker.service.drift import DriftRepair, reconcile, repair_drift
from broker.service.granting import extend_grant, grant_access
from broker.service.messagebus import Handler, MessageBus
from broker.service.notifying import (
    Notifications,
    deliver_notifications,
    list_deliveries,
    track_destinations,
)
from broker.service.ports import (
    AccountsSource,
    AwsAccounts,
    BoundariesSource,
    Clock,
    IdGenerator,
    InstanceLocks,
    NoTelemetry,
    StateCount,
    Telemetry,
    UnitOfWorkFactory,
    WebhookPoster,
)
from broker.service.queries import (
    describe_instance,
    explain_access,
    get_grant,
    list_audit_events,
    list_grants,
    watch_audit_events,
)
from broker.service.revoking import revoke_access
from broker.service.sweeps import expire_grants, finish_settling, measure_quotas, remove_orphans
from broker.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

# Which handler handles which command.
HANDLERS: dict[type[Command[Any]], Callable[..., Any]] = {
    GrantAccess: grant_access,
    ApproveGrant: approve_grant,
    DenyGrant: deny_grant,
    ExtendGrant: extend_grant,
    RevokeAccess: revoke_access,
    GetGrant: get_grant,
    ListGrants: list_grants,
    DescribeInstanceAccess: describe_instance,
    ListAuditEvents: list_audit_events,
    WatchAuditEvents: watch_audit_events,
    ExplainAccess: explain_access,
    Reconcile: reconcile,
    ExpireGrants: expire_grants,
    FinishSettling: finish_settling,
    RemoveOrphans: remove_orphans,
    MeasureQuotas: measure_quotas,
    RepairDrift: repair_drift,
    DeliverNotifications: deliver_notifications,
    ListDeliveries: list_deliveries,
    TrackDestinations: track_destinations,
}


@dataclass(frozen=True)
class Ports:
    """The adapters the service layer runs on."""

    uow: UnitOfWorkFactory
    # The AWS of every configured account and region, and those accounts and regions.
    aws: AwsAccounts
    accounts: AccountsSource
    clock: Clock
    ids: IdGenerator
    locks: InstanceLocks
    policy: PolicyHolder
    telemetry: Telemetry = field(default_factory=NoTelemetry)
    poster: WebhookPoster = field(default_factory=HttpPoster)
    # Each account's permissions boundary as read (none read: grants are not checked against).
    boundaries: BoundariesSource = field(default_factory=lambda: BoundariesHolder(Boundaries()))


@dataclass(frozen=True)
class Options:
    """What of the settings the service layer needs."""

    role_path: str = DEFAULT_ROLE_PATH
    limits: GrantLimits = field(default_factory=GrantLimits)
    # BROKER_FOREIGN_PROFILE=attach: a grant on an instance holding a foreign profile adds the
    # broker's inline policy to that profile's role instead of being refused.
    adopt_foreign_profiles: bool = False
    # Set as the permissions boundary of every role the broker creates; "" for none.
    permissions_boundary_arn: str = ""
    # How long a request waits for approval when its rule names no timeout.
    approval_timeout: timedelta = timedelta(hours=24)
    # Where grant state changes are sent, and the secret webhook deliveries are signed with.
    notifications: Notifications = field(default_factory=Notifications)
    # The fraction of each account's role and instance profile quotas kept free.
    quota_headroom: float = DEFAULT_HEADROOM
    # How long EC2 may not know an instance before it is taken for gone.
    gone_after: timedelta = timedelta(hours=2)
    # The conditions binding every instance's credentials (IMDSv2 delivery, its own VPC).
    binding: Binding = UNBOUND


def build_bus(ports: Ports, options: Options) -> MessageBus:
    # Every unit of work of a command sent by a delegate notes it in the events it appends.
    ports = replace(ports, uow=noting_delegates(ports.uow))
    convergence = Convergence(
        uow=ports.uow,
        aws=ports.aws,
        clock=ports.clock,
        locks=ports.locks,
        role_path=options.role_path,
        permissions_boundary=options.permissions_boundary_arn,
        adopt_foreign_profiles=options.adopt_foreign_profiles,
        telemetry=ports.telemetry,
        accounts=ports.accounts,
        quota_headroom=options.quota_headroom,
        binding=options.binding,
        boundaries=ports.boundaries,
    )
    authorizer = Authorizer(ports.policy, ports.uow, ports.aws, ports.accounts, options.limits)
    drift = DriftRepair(
        uow=ports.uow,
        clock=ports.clock,
        locks=ports.locks,
        convergence=convergence,
        gone_after=options.gone_after,
    )
    dependencies = {
        "uow": ports.uow,
        "aws": ports.aws,
        "accounts": ports.accounts,
        "clock": ports.clock,
        "ids": ports.ids,
        "locks": ports.locks,
        "convergence": convergence,
        "authorizer": authorizer,
        "drift": drift,
        "limits": options.limits,
        "role_path": options.role_path,
        "approval_timeout": options.approval_timeout,
        "poster": ports.poster,
        "notifications": options.notifications,
    }
    return MessageBus(
        handlers={kind: inject_dependencies(h, dependencies) for kind, h in HANDLERS.items()},
        authorizer=authorizer,
        convergence=convergence,
        locks=ports.locks,
        uow=ports.uow,
        clock=ports.clock,
        limits=options.limits,
        accounts=ports.accounts,
        telemetry=ports.telemetry,
    )


def inject_dependencies(handler: Callable[..., Any], dependencies: Mapping[str, Any]) -> Handler:
    """The handler with the dependencies its keyword parameters name given."""
    wanted = inspect.signature(handler).parameters
    return partial(handler, **{name: d for name, d in dependencies.items() if name in wanted})


@dataclass(frozen=True)
class Reloaded:
    """What a reload (SIGHUP) read and checked, to be put in force together."""

    accounts: Accounts
    policy: AccessPolicy
    boundaries: Boundaries


@dataclass(frozen=True)
class Runtime:
    bus: MessageBus
    # The access policy in force; a reload (SIGHUP) replaces it.
    policy: PolicyHolder
    engine: Engine
    uow: UnitOfWorkFactory
    # What the AWS adapters counted: every call by outcome, every retry by fault.
    aws_calls: CallTally
    aws_retries: RetryCounter
    # What the service layer measured (convergence durations).
    telemetry: BrokerTelemetry
    # Spans, exported when the OTEL_* variables ask for them.
    tracing: Tracing
    # Where grant state changes are sent.
    notifications: Notifications
    # The accounts and regions served, and their AWS adapters; a reload replaces both.
    accounts: AccountsHolder
    aws: BotoAccounts
    # Each account's permissions boundary as read; a reload reads them anew.
    boundaries: BoundariesHolder

    def reread(self, settings: Settings) -> "Reloaded":
        """The accounts and policy files as they are now, checked against each other and the
        live grants, and every account's boundary read anew (a widened one serves new grants);
        ConfigurationError, with nothing changed, when they cannot be used."""
        served = accounts = self.accounts.current()
        if settings.accounts_file is not None:
            accounts = load_accounts(settings, accounts.home.regions[0])
            check_served(self.uow, accounts)
        boundaries = Boundaries()
        if settings.permissions_boundary_arn:
            in_force, arn = self.boundaries.current(), settings.permissions_boundary_arn
            boundaries = read_boundaries_again(self.aws, served, accounts, in_force, arn)
        return Reloaded(accounts, load_access_policy(settings, accounts), boundaries)

    def reload(self, reloaded: "Reloaded") -> None:
        """Serves these accounts and regions, under this policy, from now on."""
        self.aws.reload(reloaded.accounts)
        self.accounts.replace(reloaded.accounts)
        self.policy.replace(reloaded.policy)
        self.boundaries.replace(reloaded.boundaries)

    def database_reachable(self) -> bool:
        return database_reachable(self.engine)

    @property
    def tracer(self) -> Tracer | None:
        """What traces the broker's work; None when tracing is off."""
        return self.tracing.tracer if self.tracing.enabled else None

    # What /metrics reads (broker.entrypoints.metrics.Readings).

    def grant_counts(self) -> dict[GrantState, StateCount]:
        with self.uow(read_only=True) as unit:
            return unit.grants.count_by_state()

    def aws_call_counts(self) -> dict[tuple[str, str, str], int]:
        return self.aws_calls.counts()

    def aws_retry_counts(self) -> dict[str, int]:
        return {fault.value: count for fault, count in self.aws_retries.by_fault().items()}

    def collectors(self) -> list[Collector]:
        return self.telemetry.collectors()

    def verify_audit_chain(self, anchor: Anchor | None) -> ChainReport:
        """Walks the audit trail's hash chain (reading only), requiring `anchor` if given."""
        return verify_chain(read_audit_chain(self.engine), anchor)

    def close(self) -> None:
        self.tracing.close()
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    aws_credentials: StaticCredentials | None = None,
    aws_region: str | None = None,
) -> Runtime:
    """Migrates the database to the current schema and wires the use cases to real adapters.
    Raises ConfigurationError, having built nothing, when the policy file or the tracing
    configuration (OTEL_*) is unusable."""
    accounts = AccountsHolder(load_accounts(settings, aws_region))
    policy = PolicyHolder(load_access_policy(settings, accounts.current()))
    tracing = tracing_from(os.environ, release())
    tracer = tracing.tracer
    engine = create_engine_for(settings.database_url)
    upgrade_to_head(engine, accounts.current().home.regions[0])
    check_served(sql_unit_of_work_factory(engine), accounts.current())
    budgets = RetryBudgets(
        throttling=settings.aws_throttling_budget,
        server_error=settings.aws_server_error_budget,
        connection=settings.aws_connection_budget,
        propagation=settings.propagation_timeout,
    )
    # One count of every retry of an AWS call, by action and kind of fault, and one of every
    # call, by outcome, for both adapters (and the metrics).
    retries, calls, telemetry = RetryCounter(), CallTally(), BrokerTelemetry(tracer)
    shared: dict[str, Any] = {
        "propagation_timeout": settings.propagation_timeout,
        "budgets": budgets,
        "retries": retries,
        "tally": calls,
        "tracer": tracer,
    }
    # One budget for each account's IAM writes, whoever makes them.
    aws = BotoAccounts(
        accounts.current(),
        endpoint_url=settings.aws_endpoint_url,
        home_credentials=aws_credentials,
        max_attempts=settings.aws_max_attempts,
        write_rate=settings.aws_write_rate or None,
        adapter_options=shared,
    )
    boundaries = BoundariesHolder(Boundaries())
    if settings.permissions_boundary_arn:
        arn = settings.permissions_boundary_arn
        boundaries.replace(check_boundaries(aws, accounts.current().all, arn))
    ports = Ports(
        uow=sql_unit_of_work_factory(engine, tracer),
        aws=aws,
        accounts=accounts,
        clock=SystemClock(),
        ids=RandomIds(),
        locks=DatabaseInstanceLocks(engine),
        policy=policy,
        telemetry=telemetry,
        boundaries=boundaries,
    )
    options = Options(
        role_path=settings.role_path,
        limits=GrantLimits(default_ttl=settings.default_ttl, max_ttl=settings.max_ttl),
        adopt_foreign_profiles=settings.foreign_profile == "attach",
        permissions_boundary_arn=settings.permissions_boundary_arn or "",
        approval_timeout=settings.approval_timeout,
        notifications=notifications_from(settings),
        quota_headroom=settings.role_quota_headroom,
        gone_after=settings.gone_after,
        binding=Binding(
            require_imdsv2=settings.require_imdsv2, same_vpc=settings.bind_credentials == "vpc"
        ),
    )
    bus = build_bus(ports, options)
    return Runtime(
        bus,
        policy,
        engine,
        ports.uow,
        calls,
        retries,
        telemetry,
        tracing,
        options.notifications,
        accounts,
        aws,
        boundaries,
    )


def load_access_policy(settings: Settings, accounts: Accounts) -> AccessPolicy:
    """The policy file's rules; without one, anything goes in auth mode none and nothing in the
    others (where `serve` refuses to start without one: see Settings.security_problems). A rule
    naming an account not configured is refused: a typo would quietly refuse what it allows."""
    if settings.policy_file is None:
        return UNRESTRICTED if settings.authentication == "none" else AccessPolicy()
    policy = load_policy_file(settings.policy_file)
    unknown = accounts.unknown(name for rule in policy.rules for name in rule.accounts or ())
    if unknown:
        raise ConfigurationError(
            f"policy file {settings.policy_file}: rules name accounts that are not configured "
            f"(BROKER_ACCOUNTS_FILE): {', '.join(unknown)}"
        )
    return policy


def load_accounts(settings: Settings, region: str | None = None) -> Accounts:
    """The accounts file's accounts and regions; without one, the broker's own account in its
    configured region (`region`, else boto3's). ConfigurationError when the file is unusable,
    or when no home region is known."""
    home_region = region or configured_region() or ""
    if settings.accounts_file is None:
        accounts = Accounts.single(home_region)
    else:
        accounts = load_accounts_file(settings.accounts_file, home_region)
    if not accounts.home.regions[0]:
        raise ConfigurationError(
            "no AWS region is configured for the broker's own account: set AWS_DEFAULT_REGION "
            "(or AWS_REGION), or the accounts file's home regions"
        )
    return accounts


def require_boundary(settings: Settings) -> None:
    """Refuses (ConfigurationError) to serve AWS without a permissions boundary: without it, the
    roles the broker creates are bounded by nothing but its own code."""
    if not settings.permissions_boundary_arn:
        raise ConfigurationError(
            "BROKER_PERMISSIONS_BOUNDARY_ARN is required outside the sandbox: every role the "
            f"broker creates carries it (create {BOUNDARY_NAME} from "
            "deploy/iam/boundary-policy.json in each account served; see docs/security.md)"
        )


def check_boundaries(aws: BotoAccounts, accounts: Iterable[Account], arn: str) -> Boundaries:
    """Each account's permissions boundary (the policy of the home one's name there), read.
    Refuses (ConfigurationError) one that does not exist, cannot be read, or allows more than
    the S3 actions of the four access levels: every role the broker creates carries it, and it
    is what bounds them. An account AWS does not answer for now is only logged, and left out: a
    blip must not keep the broker down, and IAM itself refuses roles without the boundary."""
    reach = {}
    for account in accounts:
        try:
            reach[account.key] = read_boundary(aws, account, arn)
        except AwsUnavailable as error:
            log.warning(
                "could not check the permissions boundary in account %s: %s", account.label, error
            )
    return Boundaries(reach)


def read_boundaries_again(
    aws: BotoAccounts, served: Accounts, accounts: Accounts, in_force: Boundaries, arn: str
) -> Boundaries:
    """Every account's boundary, read again for a reload. An account new or changed must pass
    as at start (ConfigurationError: nothing is reloaded). One served as it was stays served, so
    that its trouble does not hold back a reload of the policy file: a boundary that can no
    longer be relied on refuses the account's new grants (logged), and one AWS does not answer
    for keeps the reading in force."""
    changed = [account for account in accounts.all if account not in served.all]
    reach = dict(check_boundaries(aws.beside(accounts), changed, arn).reach) if changed else {}
    for account in accounts.all:
        if account in served.all:
            again = _read_again(aws, account, arn, in_force)
            if again is not None:
                reach[account.key] = again
    return Boundaries(reach)


def _read_again(
    aws: BotoAccounts, account: Account, arn: str, in_force: Boundaries
) -> BoundaryReach | None:
    try:
        return read_boundary(aws, account, arn)
    except ConfigurationError as error:
        log.error(
            "%s: new grants in account %s are refused until it is fixed and the broker reloaded",
            error,
            account.label,
        )
        return REFUSES_ALL
    except AwsUnavailable as error:
        log.warning("could not read the boundary in account %s again: %s", account.label, error)
        return in_force.reach.get(account.key)


def read_boundary(aws: BotoAccounts, account: Account, arn: str) -> BoundaryReach:
    """The account's boundary (the policy of the home one's name there), checked."""
    return check_boundary(aws.iam(account.key), boundary_in(arn, account.key))


def check_boundary(iam: BotoIam, arn: str) -> BoundaryReach:
    """What the boundary lets roles do; ConfigurationError when it does not exist, cannot be
    read or allows too much; AwsUnavailable when AWS does not answer."""
    try:
        document = iam.managed_policy(arn)
    except AwsRejected as error:
        raise ConfigurationError(f"permissions boundary {arn} cannot be read: {error}") from None
    if document is None:
        raise ConfigurationError(f"permissions boundary {arn}: no such policy")
    problems = boundary_problems(document)
    if problems:
        raise ConfigurationError(
            f"permissions boundary {arn} cannot bound the broker's roles: {'; '.join(problems)}. "
            "It may allow the S3 actions of the access levels on the grantable buckets, and no "
            "more: see deploy/iam/boundary-policy.json"
        )
    return BoundaryReach.of(document)


def check_served(uow: UnitOfWorkFactory, accounts: Accounts) -> None:
    """Refuses (ConfigurationError) accounts that leave out a place where grants are live: they
    could neither expire nor be revoked there, and their access would stay in AWS."""
    with uow(read_only=True) as unit:
        live = {instance.place for instance in unit.grants.live_instances()}
    unserved = sorted(live - set(accounts.places()))
    if unserved:
        places = ", ".join(str(place) for place in unserved)
        raise ConfigurationError(
            f"the accounts file leaves out where grants are live ({places}): keep those "
            "accounts and regions configured until their grants are revoked"
        )


def load_tokens(path: Path) -> tuple[StoredToken, ...]:
    """The tokens file's tokens (auth mode token); ConfigurationError when it is unusable."""
    return load_tokens_file(path)


def load_tls(settings: Settings) -> TlsFiles | None:
    """The server's certificate, key and client CA, each checked; None when serving plaintext.
    ConfigurationError when a file is unusable."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    return load_tls_files(settings.tls_cert, settings.tls_key, settings.tls_client_ca)


def migrate_database(settings: Settings) -> bool:
    """Brings the database to the latest schema; whether there was anything to do. Records from
    before accounts and regions move to the home account's first region."""
    try:
        home_region = load_accounts(settings).home.regions[0]
    except ConfigurationError:
        if settings.accounts_file is not None:
            raise
        # Without a region, the migration refuses only a database that has records to move.
        home_region = ""
    engine = create_engine_for(settings.database_url)
    try:
        pending = bool(pending_migrations(engine))
        upgrade_to_head(engine, home_region)
    finally:
        engine.dispose()
    return pending


def verify_audit_trail(database_url: str, anchor: Anchor | None) -> ChainReport:
    """Walks the audit trail's hash chain (reading only); StoreUnavailable when the database
    does not answer or is not at the latest schema."""
    engine = create_engine_for(database_url)
    try:
        if pending_migrations(engine):
            raise StoreUnavailable(
                "the database is not at the latest schema: run `access-broker migrate` first"
            )
        return verify_chain(read_audit_chain(engine), anchor)
    finally:
        engine.dispose()
