"""Migration 0007 gives every grant and instance record an account and a region: those written
before it belong to the broker's own account in its home region, which the upgrade is told and
refuses to guess; going back down keeps the home region's records alone."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from broker.adapters.db.migrate import pending_migrations, upgrade_to_head
from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from broker.domain.access import Access, GrantState
from broker.domain.grants import Grant, GrantScope, InstanceResources
from broker.domain.places import HOME_ACCOUNT, InstanceRef, Place
from broker.service.ports import InstanceRecord
from tests.integration.db.test_db_audit_chain_migration import migrate
from tests.places import HOME, at_home
from tests.records import GrantMaker, add_all

# The broker's home region, as the upgrade is told it: not the tests' usual one (at_home's), so
# that records found there can only have been put there by the migration.
REGION = "eu-west-1"
HOME_PLACE = Place(HOME_ACCOUNT, REGION)
SPOKE = Place("222222222222", REGION)
INSTANCE = "i-0123456789abcdef0"
OTHER_INSTANCE = "i-0fedcba9876543210"
CREATED = datetime(2026, 11, 28, 9, 15, tzinfo=UTC)
UPDATED = CREATED + timedelta(minutes=3)


def numbered_grant_id(number: int) -> str:
    return f"10000000-0000-4000-8000-{number:012d}"


ACTIVE_GRANT, REVOKING_GRANT = numbered_grant_id(1), numbered_grant_id(2)
ROLE = f"accessbroker-{INSTANCE}"
RESOURCES = InstanceResources(
    role_name=ROLE,
    role_arn=f"arn:aws:iam::123456789012:role/accessbroker/{ROLE}",
    profile_name=ROLE,
    profile_arn=f"arn:aws:iam::123456789012:instance-profile/accessbroker/{ROLE}",
    association_id="iip-assoc-0123456789abcdef0",
)
POLICY_DOCUMENT = '{"Version": "2012-10-17", "Statement": []}'

# The tables as release 0006 wrote them: no account, no region, and instances keyed by id alone.
RELEASED_GRANTS = sa.table(
    "grants",
    sa.column("grant_id", sa.String()),
    sa.column("instance_id", sa.String()),
    sa.column("bucket", sa.String()),
    sa.column("prefix", sa.String()),
    sa.column("access", sa.String()),
    sa.column("state", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("state_since", sa.DateTime(timezone=True)),
    sa.column("expires_at", sa.DateTime(timezone=True)),
    sa.column("requested_by", sa.String()),
    sa.column("reason", sa.String()),
    sa.column("failure_reason", sa.Text()),
    sa.column("role_name", sa.String()),
    sa.column("role_arn", sa.String()),
    sa.column("profile_name", sa.String()),
    sa.column("profile_arn", sa.String()),
    sa.column("association_id", sa.String()),
    sa.column("approval", sa.Text()),
)
RELEASED_INSTANCES = sa.table(
    "instances",
    sa.column("instance_id", sa.String()),
    sa.column("role_name", sa.String()),
    sa.column("role_arn", sa.String()),
    sa.column("profile_name", sa.String()),
    sa.column("profile_arn", sa.String()),
    sa.column("association_id", sa.String()),
    sa.column("policy_document", sa.Text()),
    sa.column("role_in_profile", sa.Boolean()),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def released_grant(grant_id: str, state: str, bucket: str) -> dict[str, object]:
    return {
        "grant_id": grant_id,
        "instance_id": INSTANCE,
        "bucket": bucket,
        "prefix": "daily/",
        "access": "upload",
        "state": state,
        "created_at": CREATED,
        "updated_at": UPDATED,
        "state_since": UPDATED,
        "expires_at": None,
        "requested_by": "alice",
        "reason": "nightly export",
        "failure_reason": "",
        "role_name": RESOURCES.role_name,
        "role_arn": RESOURCES.role_arn,
        "profile_name": RESOURCES.profile_name,
        "profile_arn": RESOURCES.profile_arn,
        "association_id": RESOURCES.association_id,
        "approval": None,
    }


def write_released_records(engine: Engine) -> None:
    """An active and a revoking grant of one instance, and its record, as release 0006 wrote
    them."""
    instance = {
        "instance_id": INSTANCE,
        "role_name": RESOURCES.role_name,
        "role_arn": RESOURCES.role_arn,
        "profile_name": RESOURCES.profile_name,
        "profile_arn": RESOURCES.profile_arn,
        "association_id": RESOURCES.association_id,
        "policy_document": POLICY_DOCUMENT,
        "role_in_profile": True,
        "updated_at": UPDATED,
    }
    grants = [
        released_grant(ACTIVE_GRANT, "active", "reports"),
        released_grant(REVOKING_GRANT, "revoking", "exports"),
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(RELEASED_GRANTS), grants)
        connection.execute(sa.insert(RELEASED_INSTANCES), [instance])


def active_grant(place: Place, grant_id: str = ACTIVE_GRANT) -> Grant:
    """The active grant released_grant writes, as the stores read it once it lives in `place`."""
    return Grant(
        grant_id=grant_id,
        instance_id=INSTANCE,
        place=place,
        scope=GrantScope("reports", "daily/", Access.UPLOAD),
        state=GrantState.ACTIVE,
        created_at=CREATED,
        updated_at=UPDATED,
        state_since=UPDATED,
        expires_at=None,
        requested_by="alice",
        reason="nightly export",
        resources=RESOURCES,
    )


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_records_written_before_it_belong_to_the_home_account_in_the_home_region(
    blank_engine: Engine,
) -> None:
    migrate(blank_engine, "0006")
    write_released_records(blank_engine)

    upgrade_to_head(blank_engine, REGION)

    instance = InstanceRef(HOME_PLACE, INSTANCE)
    with sql_unit_of_work_factory(blank_engine)(read_only=True) as uow:
        active, revoking = uow.grants.get(ACTIVE_GRANT), uow.grants.get(REVOKING_GRANT)
        live = uow.grants.for_instance(instance)
        settling, all_live = uow.grants.settling_instances(), uow.grants.live_instances()
        record = uow.instances.get(instance)
        elsewhere = uow.instances.get(at_home(INSTANCE))
    assert active == active_grant(HOME_PLACE)
    assert revoking is not None and revoking.place == HOME_PLACE
    assert [g.grant_id for g in live] == [ACTIVE_GRANT, REVOKING_GRANT]
    assert (settling, all_live) == ([instance], [instance])
    assert record == InstanceRecord(
        instance=instance,
        resources=RESOURCES,
        policy_document=POLICY_DOCUMENT,
        updated_at=UPDATED,
        role_in_profile=True,
    )
    assert elsewhere is None, "the records are the home region's, not any other's"


def test_an_upgrade_without_a_home_region_refuses_and_changes_nothing(
    blank_engine: Engine,
) -> None:
    migrate(blank_engine, "0006")
    write_released_records(blank_engine)

    with pytest.raises(RuntimeError, match="needs the broker's home region"):
        upgrade_to_head(blank_engine)

    assert current_revision(blank_engine) == "0006"
    with blank_engine.connect() as connection:
        grants = connection.execute(sa.select(RELEASED_GRANTS.c.grant_id)).scalars().all()
        instances = connection.execute(sa.select(RELEASED_INSTANCES.c.instance_id)).all()
    assert sorted(grants) == [ACTIVE_GRANT, REVOKING_GRANT]
    assert len(instances) == 1


def test_an_empty_database_and_an_up_to_date_one_need_no_home_region(
    blank_engine: Engine,
) -> None:
    migrate(blank_engine, "0006")
    upgrade_to_head(blank_engine)
    assert not pending_migrations(blank_engine)

    add_grant_and_record(blank_engine, HOME)
    upgrade_to_head(blank_engine)  # nothing left to migrate: nothing to move

    assert not pending_migrations(blank_engine)


def add_grant_and_record(engine: Engine, place: Place, number: int = 1) -> Grant:
    """An active grant of INSTANCE in `place`, and the instance's record there, as the stores
    write them."""
    grant = active_grant(place, numbered_grant_id(number))
    units = sql_unit_of_work_factory(engine)
    with units() as uow:
        uow.grants.add(grant)
        record = InstanceRecord(InstanceRef(place, INSTANCE), RESOURCES, POLICY_DOCUMENT, UPDATED)
        uow.instances.save(record)
        uow.commit()
    return grant


def test_a_downgrade_keeps_the_home_regions_records_alone(
    engine: Engine, make_grant: GrantMaker
) -> None:
    kept = add_grant_and_record(engine, HOME_PLACE)
    # The same instance id in the home account's other region, and in another account.
    add_grant_and_record(engine, HOME, 2)
    add_grant_and_record(engine, SPOKE, 3)
    other = make_grant(instance_id=OTHER_INSTANCE, place=SPOKE)
    add_all(sql_unit_of_work_factory(engine), [other])

    with pytest.raises(RuntimeError, match="needs the broker's home region"):
        migrate(engine, "0006", down=True)
    migrate(engine, "0006", down=True, home_region=REGION)

    assert current_revision(engine) == "0006"
    with engine.connect() as connection:
        grants = connection.execute(sa.select(RELEASED_GRANTS.c.grant_id)).scalars().all()
        instances = connection.execute(
            sa.select(RELEASED_INSTANCES.c.instance_id, RELEASED_INSTANCES.c.association_id)
        ).all()
    assert grants == [kept.grant_id]
    assert [tuple(row) for row in instances] == [(INSTANCE, RESOURCES.association_id)]

    # And back up: what was kept is the home region's again, as it was.
    upgrade_to_head(engine, REGION)
    with sql_unit_of_work_factory(engine)(read_only=True) as uow:
        assert uow.grants.get(kept.grant_id) == kept
        record = uow.instances.get(InstanceRef(HOME_PLACE, INSTANCE))
        assert uow.grants.live_instances() == [InstanceRef(HOME_PLACE, INSTANCE)]
    assert record == InstanceRecord(
        InstanceRef(HOME_PLACE, INSTANCE), RESOURCES, POLICY_DOCUMENT, UPDATED
    )
