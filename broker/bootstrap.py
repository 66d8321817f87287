"""The composition root: the one place that builds the engine, the AWS clients and the use cases."""

from dataclasses import dataclass

from sqlalchemy import Engine

from broker.adapters.aws.clients import StaticCredentials, make_aws_clients
from broker.adapters.aws.ec2 import BotoEc2
from broker.adapters.aws.iam import BotoIam
from broker.adapters.aws.retry import RetryBudgets, RetryCounter
from broker.adapters.config.policy_file import load_policy_file
from broker.adapters.db.engine import create_engine_for, database_reachable
from broker.adapters.db.locks import DatabaseInstanceLocks
from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.adapters.system import RandomIds, SystemClock
from broker.domain.authorization import UNRESTRICTED, AccessPolicy
from broker.service.dependencies import Dependencies, GrantLimits
from broker.service.policy_holder import PolicyHolder
from broker.settings import Settings


@dataclass(frozen=True)
class Runtime:
    deps: Dependencies
    engine: Engine

    def database_reachable(self) -> bool:
        return database_reachable(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    aws_credentials: StaticCredentials | None = None,
    aws_region: str | None = None,
) -> Runtime:
    """Migrates the database to the current schema and wires the use cases to real adapters.
    Raises ConfigurationError, having built nothing, when the policy file is unusable."""
    access_policy = PolicyHolder(load_access_policy(settings))
    engine = create_engine_for(settings.database_url)
    upgrade_to_head(engine)
    clients = make_aws_clients(
        endpoint_url=settings.aws_endpoint_url,
        region=aws_region,
        credentials=aws_credentials,
        max_attempts=settings.aws_max_attempts,
    )
    budgets = RetryBudgets(
        throttling=settings.aws_throttling_budget,
        server_error=settings.aws_server_error_budget,
        connection=settings.aws_connection_budget,
        propagation=settings.propagation_timeout,
    )
    # One count of every retry of an AWS call, by action and kind of fault, for both adapters.
    retries = RetryCounter()
    timeout = settings.propagation_timeout
    deps = Dependencies(
        uow=sql_unit_of_work_factory(engine),
        iam=BotoIam(clients.iam, propagation_timeout=timeout, budgets=budgets, retries=retries),
        ec2=BotoEc2(clients.ec2, propagation_timeout=timeout, budgets=budgets, retries=retries),
        clock=SystemClock(),
        ids=RandomIds(),
        locks=DatabaseInstanceLocks(engine),
        role_path=settings.role_path,
        limits=GrantLimits(default_ttl=settings.default_ttl, max_ttl=settings.max_ttl),
        adopt_foreign_profiles=settings.foreign_profile == "attach",
        permissions_boundary_arn=settings.permissions_boundary_arn or "",
        access_policy=access_policy,
    )
    return Runtime(deps, engine)


def load_access_policy(settings: Settings) -> AccessPolicy:
    """The policy file's rules; without one, anything goes in auth mode none and nothing in the
    others (where `serve` refuses to start without one: see Settings.security_problems)."""
    if settings.policy_file is not None:
        return load_policy_file(settings.policy_file)
    return UNRESTRICTED if settings.authentication == "none" else AccessPolicy()
