"""The composition root: the one place that builds the engine, the AWS clients and the use cases."""

from dataclasses import dataclass

from sqlalchemy import Engine

from broker.adapters.aws.clients import StaticCredentials, make_aws_clients
from broker.adapters.aws.ec2 import BotoEc2
from broker.adapters.aws.iam import BotoIam
from broker.adapters.db.engine import create_engine_for, database_reachable
from broker.adapters.db.locks import DatabaseInstanceLocks
from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.adapters.system import RandomIds, SystemClock
from broker.service.dependencies import Dependencies
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
    """Migrates the database to the current schema and wires the use cases to real adapters."""
    engine = create_engine_for(settings.database_url)
    upgrade_to_head(engine)
    clients = make_aws_clients(
        endpoint_url=settings.aws_endpoint_url, region=aws_region, credentials=aws_credentials
    )
    deps = Dependencies(
        uow=sql_unit_of_work_factory(engine),
        iam=BotoIam(clients.iam, propagation_timeout=settings.propagation_timeout),
        ec2=BotoEc2(clients.ec2, propagation_timeout=settings.propagation_timeout),
        clock=SystemClock(),
        ids=RandomIds(),
        locks=DatabaseInstanceLocks(engine),
        role_path=settings.role_path,
    )
    return Runtime(deps, engine)
