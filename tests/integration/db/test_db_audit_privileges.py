"""deploy/postgres/broker-privileges.sql on a real server: the broker's role can append to the
audit trail but not change it, and every store the broker uses still works as that role."""

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from broker.adapters.db.audit_trail import read_audit_chain
from broker.adapters.db.engine import create_engine_for
from broker.adapters.db.migrate import upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.domain.access import GrantState
from broker.domain.audit_chain import verify_chain
from tests.records import (
    GrantMaker,
    append_all,
    audit_event,
    idempotency_record,
    instance_record,
)

SCRIPT = Path(__file__).parents[3] / "deploy" / "postgres" / "broker-privileges.sql"
CHANGES = [
    "UPDATE audit_events SET actor = 'mallory'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
]


@pytest.fixture
def owner_url(postgres_url: str) -> str:
    """A migrated schema of its own, owned by the server's administrator role."""
    if shutil.which("psql") is None:
        pytest.skip("the privileges script runs with psql, which is not installed")
    engine = create_engine_for(postgres_url)
    upgrade_to_head(engine)
    engine.dispose()
    return postgres_url


@pytest.fixture
def broker_role(owner_url: str) -> Iterator[str]:
    """A throwaway role with no privileges yet, dropped with whatever it was granted."""
    role = f"broker_app_{secrets.token_hex(4)}"
    admin = create_engine(owner_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE ROLE "{role}"'))
    yield role
    with admin.begin() as connection:
        connection.execute(text(f'DROP OWNED BY "{role}"'))
        connection.execute(text(f'DROP ROLE "{role}"'))
    admin.dispose()


@pytest.fixture
def broker_engine(owner_url: str, broker_role: str) -> Iterator[Engine]:
    """An engine whose connections act as the broker's role, after the script has run."""
    apply_script(owner_url, broker_role).check_returncode()
    url = make_url(owner_url)
    options = f"{url.query['options']} -crole={broker_role}"
    engine = create_engine_for(url.update_query_dict({"options": options}).render_as_string())
    yield engine
    engine.dispose()


def apply_script(owner_url: str, broker_role: str | None) -> subprocess.CompletedProcess[str]:
    libpq_url = make_url(owner_url).set(drivername="postgresql").render_as_string(False)
    variables = ["-v", f"broker_role={broker_role}"] if broker_role else []
    return subprocess.run(
        ["psql", "-X", "-q", *variables, "-f", str(SCRIPT), libpq_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_broker_role_appends_and_reads_the_audit_trail(broker_engine: Engine) -> None:
    units = sql_unit_of_work_factory(broker_engine)

    append_all(units, [audit_event(1), audit_event(2)])

    report = verify_chain(read_audit_chain(broker_engine))
    assert report.broken is None
    assert report.intact_events == 2


@pytest.mark.parametrize("statement", CHANGES)
def test_the_broker_role_cannot_change_the_audit_trail(
    broker_engine: Engine, statement: str
) -> None:
    append_all(sql_unit_of_work_factory(broker_engine), [audit_event(1)])

    with pytest.raises(ProgrammingError, match="permission denied"), broker_engine.begin() as db:
        db.execute(text(statement))

    assert verify_chain(read_audit_chain(broker_engine)).intact_events == 1


def test_every_store_works_as_the_broker_role(
    broker_engine: Engine, make_grant: GrantMaker
) -> None:
    units = sql_unit_of_work_factory(broker_engine)
    grant = make_grant()

    with units() as uow:
        uow.grants.add(grant)
        uow.idempotency.add(idempotency_record())
        uow.instances.save(instance_record("", "iip-assoc-1"))
        uow.audit.append(audit_event(1))
        uow.commit()
    with units() as uow:
        uow.grants.save(replace(grant, state=GrantState.ACTIVE))
        uow.instances.save(instance_record("{}", "iip-assoc-2"))
        uow.commit()
    # `serve` runs this at start: on a current schema it must only read.
    upgrade_to_head(broker_engine)

    with units() as uow:
        stored = uow.grants.get(grant.grant_id)
        assert stored is not None
        assert stored.state is GrantState.ACTIVE


def test_the_script_refuses_the_administrator_it_runs_as(owner_url: str) -> None:
    # The tests' role creates roles, so it is a superuser or has CREATEROLE.
    administrator = make_url(owner_url).username

    result = apply_script(owner_url, administrator)

    assert result.returncode != 0
    assert f'role "{administrator}" is a superuser or has CREATEROLE' in result.stderr


def test_the_script_refuses_a_member_of_the_owner_and_grants_nothing(
    owner_url: str, broker_role: str
) -> None:
    owner = make_url(owner_url).username
    admin = create_engine(owner_url)
    with admin.begin() as connection:
        connection.execute(text(f'GRANT "{owner}" TO "{broker_role}"'))

    result = apply_script(owner_url, broker_role)

    with admin.connect() as connection:
        granted = connection.execute(
            text("SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = :r"),
            {"r": broker_role},
        ).scalar_one()
    admin.dispose()
    assert result.returncode != 0
    assert "owns the tables and can grant itself anything back" in result.stderr
    assert granted == 0


def test_the_script_asks_for_the_role_when_none_is_named(owner_url: str) -> None:
    result = apply_script(owner_url, None)

    assert result.returncode != 0
    assert "name the broker's role: psql -v broker_role=NAME" in result.stderr
