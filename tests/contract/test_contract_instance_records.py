"""The InstanceRecords port: one record per instance where it lives, inserted and then
overwritten."""

from dataclasses import replace
from datetime import UTC, timedelta

from broker.domain.places import HOME_ACCOUNT, InstanceRef, Place
from broker.service.ports import UnitOfWorkFactory
from tests.places import HOME, at_home
from tests.records import INSTANCE_A, MOMENT, instance_record

SPOKE = Place("222222222222", HOME.region)


def test_instance_record_is_inserted_then_overwritten(units: UnitOfWorkFactory) -> None:
    first = instance_record('{"Version": "2012-10-17", "Statement": []}', "iip-assoc-1")
    second = instance_record("", "iip-assoc-2")
    with units() as uow:
        assert uow.instances.get(at_home(INSTANCE_A)) is None
        uow.instances.save(first)
        uow.commit()
    with units() as uow:
        assert uow.instances.get(at_home(INSTANCE_A)) == first
        uow.instances.save(second)
        uow.commit()

    with units() as uow:
        read = uow.instances.get(at_home(INSTANCE_A))

    assert read == second
    assert read is not None
    assert read.updated_at.tzinfo == UTC


def test_an_instance_has_a_record_of_its_own_in_each_place(units: UnitOfWorkFactory) -> None:
    home = instance_record("", "iip-assoc-1")
    in_spoke = replace(instance_record("", "iip-assoc-2"), instance=InstanceRef(SPOKE, INSTANCE_A))
    with units() as uow:
        uow.instances.save(home)
        uow.instances.save(in_spoke)
        uow.commit()

    with units() as uow:
        read = (uow.instances.get(at_home(INSTANCE_A)), uow.instances.get(in_spoke.instance))
        elsewhere = uow.instances.get(InstanceRef(Place(HOME_ACCOUNT, "eu-west-1"), INSTANCE_A))

    assert read == (home, in_spoke)
    assert elsewhere is None


def test_an_instance_ec2_does_not_know_is_noted_once_per_place_until_found(
    units: UnitOfWorkFactory,
) -> None:
    first, later = MOMENT, MOMENT + timedelta(hours=1)
    here, there = at_home(INSTANCE_A), InstanceRef(SPOKE, INSTANCE_A)
    with units() as uow:
        uow.instances.note_missing(here, first)
        uow.commit()
    with units() as uow:
        uow.instances.note_missing(here, later)  # noted already: the first time stays
        uow.commit()
    with units(read_only=True) as uow:
        noted = (uow.instances.missing_since(here), uow.instances.missing_since(there))
        marked = uow.instances.noted_missing()
    with units() as uow:
        uow.instances.note_found(here)
        uow.instances.note_found(there)  # never noted: nothing to do
        uow.commit()
    with units(read_only=True) as uow:
        found = uow.instances.missing_since(here)

    assert noted == (first, None)
    assert marked == {here}
    assert found is None
