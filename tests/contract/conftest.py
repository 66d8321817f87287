"""Each port's contract, run against every implementation of it.

The hand-written fakes the service tests use (tests/unit/service/fakes.py) and the real adapters
pass the same tests, so a fake cannot drift from what it stands for: the database ports against
FakeDatabase and the SQL unit of work on SQLite and PostgreSQL, the AWS ports against FakeAws and
BotoIam/BotoEc2 on the session's emulator.
"""

import pytest
from sqlalchemy import Engine

from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.domain.naming import DEFAULT_ROLE_PATH
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator
from broker.service.ports import UnitOfWorkFactory
from tests.contract.aws_worlds import MANAGED_TAGS, AwsWorld, EmulatedAws, FakeAwsWorld, unique
from tests.postgres import SQL_DATABASES
from tests.unit.service.fakes import FakeDatabase

FAKE = "fake"


@pytest.fixture(params=[FAKE, *SQL_DATABASES])
def database_kind(request: pytest.FixtureRequest) -> str:
    """The fake besides the SQL databases (this overrides tests/conftest.py's fixture)."""
    kind: str = request.param
    return kind


@pytest.fixture
def units(database_kind: str, request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    """Units of work on a fresh, empty database of the test's kind."""
    if database_kind == FAKE:
        return FakeDatabase()
    # Asked for only here, so the fake's tests create no database (and PostgreSQL's skip, with
    # tests/conftest.py's reason, when no server is given).
    engine: Engine = request.getfixturevalue("engine")
    return sql_unit_of_work_factory(engine)


@pytest.fixture(params=[FAKE, "emulator"])
def aws(request: pytest.FixtureRequest) -> AwsWorld:
    """AWS as the ports see it, plus what a test arranges or inspects behind their back."""
    if request.param == FAKE:
        return FakeAwsWorld()
    # Asked for only here, so the fake's tests start no emulator.
    emulated: AwsWorld = request.getfixturevalue("emulated_aws")
    return emulated


@pytest.fixture(scope="session")
def emulated_aws(emulator: Emulator) -> EmulatedAws:
    # Once per session: loading a service model takes a second or two per client, and the
    # emulator's state is shared anyway (tests use fresh names and instances).
    return EmulatedAws(emulator)


@pytest.fixture
def role(aws: AwsWorld) -> str:
    """A managed role of a fresh name (the tests of profiles give a profile the same name, as
    the broker does)."""
    name = unique("role")
    aws.iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    return name
