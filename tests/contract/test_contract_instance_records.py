"""The InstanceRecords port: one record per instance, inserted and then overwritten."""

from datetime import UTC

from broker.service.ports import UnitOfWorkFactory
from tests.records import INSTANCE_A, instance_record


def test_instance_record_is_inserted_then_overwritten(units: UnitOfWorkFactory) -> None:
    first = instance_record('{"Version": "2012-10-17", "Statement": []}', "iip-assoc-1")
    second = instance_record("", "iip-assoc-2")
    with units() as uow:
        assert uow.instances.get(INSTANCE_A) is None
        uow.instances.save(first)
        uow.commit()
    with units() as uow:
        assert uow.instances.get(INSTANCE_A) == first
        uow.instances.save(second)
        uow.commit()

    with units() as uow:
        read = uow.instances.get(INSTANCE_A)

    assert read == second
    assert read is not None
    assert read.updated_at.tzinfo == UTC
