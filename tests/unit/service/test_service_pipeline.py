"""The pipeline over fakes: what waits for an instance's lock, and what writes.

A request that changes nothing is answered without the instance's lock and writes nothing, so
reads and repeats never wait behind a convergence. A grant that changes something is recorded
without it too, and waits only to converge, in one round with every grant recorded meanwhile.
Each test holds the instance's lock in another thread (as a convergence in progress would) and
runs the requests beside it.
"""

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.grants import Grant
from broker.service.commands import (
    DescribeInstanceAccess,
    ExtendGrant,
    GetGrant,
    GrantResult,
    ListGrants,
    RevokeAccess,
)
from tests.blocking import blocked_at
from tests.places import at_home
from tests.unit.service.fakes import INSTANCE, POLICY, ROLE, World, grant_command, policy_of
from tests.waiting import wait_for, wait_until

T = TypeVar("T")
HOUR = timedelta(hours=1)


@contextmanager
def lock_held_elsewhere(w: World) -> Iterator[None]:
    """The instance's lock, held by another thread until the block ends."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with w.locks.hold(at_home(INSTANCE).key):
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        wait_until(holding.is_set, what="the other thread holding the instance's lock")
        yield
    finally:
        release.set()
        holder.join()


def beside_the_lock(w: World, request: Callable[[], T]) -> T:
    """The request's answer, reached while another thread holds the instance's lock; fails
    naming the wait if the request waits for that lock."""
    answers: list[T] = []
    with lock_held_elsewhere(w):
        worker = threading.Thread(target=lambda: answers.append(request()))
        worker.start()
        wait_for(lambda: answers, bool, what="the answer, without waiting for the lock")
    worker.join()
    return answers[0]


def test_a_repeated_identical_grant_is_answered_without_the_lock_or_a_write(w: World) -> None:
    first = w.handle(grant_command("photos", ttl=HOUR)).grant
    commits, calls = w.db.commits, len(w.aws.calls)

    again = beside_the_lock(w, lambda: w.handle(grant_command("photos", ttl=HOUR)))

    assert again.grant == first
    assert again.grant.state is GrantState.ACTIVE
    assert again.policy_document != ""
    assert (w.db.commits, len(w.aws.calls)) == (commits, calls)


def test_a_repeated_identical_grant_reads_the_database_once(w: World) -> None:
    first = w.handle(grant_command("photos", ttl=HOUR))
    units = w.db.units

    again = w.handle(grant_command("photos", ttl=HOUR))

    # The handler's read of the instance's grants answers the policy too.
    assert w.db.units == units + 1
    assert (again.grant, again.policy_document) == (first.grant, first.policy_document)


def test_a_retry_under_its_key_of_a_finished_grant_waits_for_nothing(w: World) -> None:
    first = w.handle(grant_command("photos", idempotency_key="deploy-1")).grant
    commits = w.db.commits

    again = beside_the_lock(
        w, lambda: w.handle(grant_command("photos", idempotency_key="deploy-1"))
    )

    assert again.grant == first
    assert w.db.commits == commits


def test_a_dry_run_and_the_reads_wait_for_nothing(w: World) -> None:
    granted = w.handle(grant_command("photos")).grant
    commits = w.db.commits

    preview = beside_the_lock(w, lambda: w.handle(grant_command("logs", dry_run=True)))
    read = beside_the_lock(w, lambda: w.handle(GetGrant(grant_id=granted.grant_id)))
    listed = beside_the_lock(w, lambda: w.handle(ListGrants(instance_id=INSTANCE)))
    described = beside_the_lock(w, lambda: w.handle(DescribeInstanceAccess(instance_id=INSTANCE)))

    assert preview.planned_changes == (f"put inline policy {POLICY} on role {ROLE}",)
    assert read == granted
    assert [g.grant_id for g in listed.items] == [granted.grant_id]
    assert [g.grant_id for g in described.grants] == [granted.grant_id]
    assert w.db.commits == commits


def test_a_repeat_of_a_revoked_grant_without_a_key_changes_nothing(w: World) -> None:
    granted = w.handle(grant_command("photos")).grant
    w.revoke(granted.grant_id)
    commits = w.db.commits

    again = beside_the_lock(w, lambda: w.handle(RevokeAccess(grant_id=granted.grant_id)))

    assert again.grant.state is GrantState.REVOKED
    assert w.db.commits == commits


def test_a_new_grant_is_recorded_beside_a_convergence_and_waits_only_to_converge(
    w: World,
) -> None:
    w.handle(grant_command("photos", ttl=HOUR))
    answers: list[GrantResult] = []
    with lock_held_elsewhere(w):
        worker = threading.Thread(
            target=lambda: answers.append(w.handle(grant_command("logs", Access.READ)))
        )
        worker.start()
        wait_until(
            lambda: blocked_at(worker, type(w.locks).hold_counting, "with entry.lock:"),
            what="the new grant waiting for the instance's lock, to converge",
        )
        assert [(g.scope.bucket, g.state) for g in w.db.grants()] == [
            ("photos", GrantState.ACTIVE),
            ("logs", GrantState.PENDING),
        ]
        assert answers == []
    worker.join()

    assert answers[0].grant.state is GrantState.ACTIVE


def test_grants_recorded_while_a_convergence_runs_are_carried_by_one_more(w: World) -> None:
    buckets = ["photos", "logs", "scans", "music", "notes"]
    answers: list[GrantResult] = []
    with lock_held_elsewhere(w):
        workers = [
            threading.Thread(target=lambda b=bucket: answers.append(w.handle(grant_command(b))))
            for bucket in buckets
        ]
        for worker in workers:
            worker.start()
        wait_until(
            lambda: len(w.db.grants()) == len(buckets),
            what="every grant recorded while the lock is held",
        )
    for worker in workers:
        worker.join()

    assert len(w.aws.writes("put_role_policy")) == 1
    assert {a.grant.state for a in answers} == {GrantState.ACTIVE}
    [policy] = w.aws.roles[ROLE].policies.values()
    assert policy == policy_of(*((bucket, "", Access.UPLOAD) for bucket in buckets))


def test_an_extension_waits_for_a_running_convergence(w: World) -> None:
    granted = w.handle(grant_command("photos", ttl=HOUR)).grant
    answers: list[Grant] = []
    with lock_held_elsewhere(w):
        worker = threading.Thread(
            target=lambda: answers.append(
                w.handle(ExtendGrant(grant_id=granted.grant_id, ttl=2 * HOUR))
            )
        )
        worker.start()
        wait_until(
            lambda: blocked_at(worker, type(w.locks).hold_counting, "with entry.lock:"),
            what="the extension waiting for the instance's lock",
        )
        assert w.grant_of(granted.grant_id).expires_at == granted.expires_at
    worker.join()

    assert answers[0].expires_at == w.clock.now() + 2 * HOUR


def test_a_grant_admitted_while_the_first_one_builds_up_reads_nothing_of_iam(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    building, finish = threading.Event(), threading.Event()
    create_instance_profile = w.aws.create_instance_profile

    def held(*args: Any, **kwargs: Any) -> Any:
        building.set()  # the role exists, and the record says so; the profile not yet
        finish.wait()
        return create_instance_profile(*args, **kwargs)

    monkeypatch.setattr(w.aws, "create_instance_profile", held)
    answers: list[GrantResult] = []
    first = threading.Thread(target=lambda: answers.append(w.handle(grant_command("photos"))))
    first.start()
    wait_until(building.is_set, what="the first grant's convergence half-way")
    reads = w.aws.entered.copy()
    second = threading.Thread(target=lambda: answers.append(w.handle(grant_command("logs"))))
    second.start()
    wait_until(lambda: len(w.db.grants()) == 2, what="the second grant recorded")

    # Admitted from the record the first convergence keeps step by step: EC2 only was asked.
    assert w.aws.entered - reads == Counter({"find_instance": 1})
    finish.set()
    first.join()
    second.join()
    assert {a.grant.state for a in answers} == {GrantState.ACTIVE}
    [policy] = w.aws.roles[ROLE].policies.values()
    assert policy == policy_of(("photos", "", Access.UPLOAD), ("logs", "", Access.UPLOAD))
