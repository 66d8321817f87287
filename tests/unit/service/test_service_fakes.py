"""The fakes behave like what they stand for, or the service tests prove nothing."""

import threading
from datetime import timedelta

import pytest

from broker.adapters.locks import ProcessInstanceLocks
from broker.domain.audit import NewAuditEvent, Outcome
from broker.domain.errors import AwsUnavailable
from broker.domain.grants import Grant, GrantRequest, GrantScope, new_grant
from broker.domain.validation import grant_id_problems
from tests.blocking import blocked_at
from tests.places import HOME
from tests.unit.service.fakes import (
    INSTANCE,
    OTHER_INSTANCE,
    START,
    FakeAws,
    FakeDatabase,
    FixedClock,
    SequentialIds,
    grant_command,
    world,
)
from tests.waiting import wait_until

# The statement at which a thread waits for an instance lock that another thread holds.
LOCKED = "with entry.lock:"


def a_grant(grant_id: str = "00000000-0000-0000-0000-000000000001") -> Grant:
    command = grant_command()
    assert command.access is not None
    scope = GrantScope(command.bucket, command.prefix, command.access)
    return new_grant(grant_id, GrantRequest(INSTANCE, scope, None, "", "me", HOME), START)


def test_writes_are_seen_by_others_only_after_commit() -> None:
    db = FakeDatabase()
    with db() as writer, db() as reader:
        writer.grants.add(a_grant())
        assert writer.grants.get(a_grant().grant_id) == a_grant()
        assert reader.grants.get(a_grant().grant_id) is None
        writer.commit()
    with db() as later:
        assert later.grants.get(a_grant().grant_id) == a_grant()


def test_leaving_without_commit_discards_the_writes() -> None:
    db = FakeDatabase()
    with db() as uow:
        uow.grants.add(a_grant())
        uow.audit.append(NewAuditEvent(START, "me", "x", Outcome.SUCCESS))
    assert (db.grants(), db.audit_actions(), db.commits) == ([], [], 0)


def test_aws_deletes_of_missing_things_are_quiet_no_ops() -> None:
    aws = FakeAws()
    aws.delete_role("r")
    aws.delete_role_policy("r", "pol")
    aws.remove_role_from_instance_profile("p", "r")
    aws.delete_instance_profile("p")
    aws.disassociate("iip-assoc-0")
    assert aws.calls == []


def test_aws_fails_an_operation_the_given_number_of_times() -> None:
    aws = FakeAws()
    aws.fail("create_role", AwsUnavailable("down"), times=2)
    for _ in range(2):
        with pytest.raises(AwsUnavailable, match="down"):
            aws.create_role("r", "/", "{}", {})
    assert aws.calls == []
    aws.create_role("r", "/", "{}", {})
    assert aws.calls == [("create_role", "r")]


def test_clock_and_ids() -> None:
    clock = FixedClock()
    clock.advance(timedelta(minutes=5))
    assert clock.now() == START + timedelta(minutes=5)
    ids = SequentialIds()
    first, second = ids.new_grant_id(), ids.new_grant_id()
    assert first != second
    assert grant_id_problems(first) == grant_id_problems(second) == []


def test_a_world_wires_one_aws_for_both_ports_and_the_process_locks() -> None:
    aws = FakeAws()
    ports = world(aws=aws).ports
    assert ports.aws.iam(HOME.account) is aws
    assert ports.aws.ec2(HOME) is aws
    assert isinstance(ports.locks, ProcessInstanceLocks)


def test_instance_locks_serialize_one_instance_and_are_reentrant() -> None:
    locks = ProcessInstanceLocks()
    inside, release = threading.Event(), threading.Event()
    got: list[str] = []

    def holder() -> None:
        with locks.hold(INSTANCE), locks.hold(INSTANCE):  # re-entrant
            inside.set()
            release.wait()

    def contender(instance_id: str) -> None:
        with locks.hold(instance_id):
            got.append(instance_id)

    held = threading.Thread(target=holder)
    blocked = threading.Thread(target=contender, args=(INSTANCE,))
    held.start()
    try:
        wait_until(inside.is_set, what="the holder inside both of its holds")
        blocked.start()
        # Seen blocked on the lock (or, if the lock failed to serialize, already in).
        wait_until(
            lambda: bool(got) or blocked_at(blocked, ProcessInstanceLocks.hold_counting, LOCKED),
            what="the contender for the same instance blocked on its lock",
        )
        assert got == [], "the same instance waits"
        contender(OTHER_INSTANCE)
        assert got == [OTHER_INSTANCE], "another instance does not"
    finally:
        release.set()
    held.join()
    wait_until(lambda: len(got) == 2, what="the contender for the same instance got in")
    blocked.join()
    assert got == [OTHER_INSTANCE, INSTANCE]
