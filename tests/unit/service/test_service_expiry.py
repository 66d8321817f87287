"""Expiry: the server's default and maximum ttl, and the sweep that ends expired grants."""

import threading
from datetime import timedelta

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.audit import SYSTEM_ACTOR
from broker.domain.errors import AwsUnavailable, InvalidRequest
from broker.domain.grants import GrantLimits, InstanceResources
from broker.service.commands import ExpireGrants
from tests.places import at_home
from tests.unit.service.fakes import (
    INSTANCE,
    OTHER_INSTANCE,
    POLICY,
    ROLE,
    START,
    World,
    grant_command,
    policy_of,
)
from tests.waiting import WAIT_SECONDS

HOUR = timedelta(hours=1)


# The instances that exist in the world `w` (tests/unit/conftest.py).
INSTANCES = (INSTANCE, OTHER_INSTANCE)


def limited(w: World, **limits: timedelta | None) -> World:
    return w.with_options(limits=GrantLimits(**limits))


def test_the_sweep_expires_the_last_grant_and_tears_everything_down(w: World) -> None:
    grant = w.handle(grant_command(ttl=HOUR, actor="alice")).grant
    w.clock.advance(HOUR)

    assert w.handle(ExpireGrants()) == []

    expired = w.grant_of(grant.grant_id)
    assert expired.state is GrantState.EXPIRED
    assert expired.resources == InstanceResources()
    assert (w.aws.roles, w.aws.profiles, w.aws.associations) == ({}, {}, {})
    [event] = [e for e in w.db.snapshot().audit if e.action == "grant.expired"]
    assert (event.actor, event.grant_id) == (SYSTEM_ACTOR, grant.grant_id)
    assert event.detail["expires_at"] == (START + HOUR).isoformat()


def test_the_sweep_withdraws_only_the_expired_grant(w: World) -> None:
    short = w.handle(grant_command("photos", ttl=HOUR)).grant
    kept = w.handle(grant_command("logs", Access.READ)).grant
    w.clock.advance(HOUR + timedelta(seconds=1))

    w.handle(ExpireGrants())

    assert w.grant_of(short.grant_id).state is GrantState.EXPIRED
    assert w.grant_of(kept.grant_id).state is GrantState.ACTIVE
    assert w.aws.roles[ROLE].policies[POLICY] == policy_of(("logs", "", Access.READ))


def test_nothing_expires_before_its_time(w: World) -> None:
    grant = w.handle(grant_command(ttl=HOUR)).grant
    calls = list(w.aws.calls)
    w.clock.advance(HOUR - timedelta(microseconds=1))

    w.handle(ExpireGrants())

    assert w.grant_of(grant.grant_id).state is GrantState.ACTIVE
    assert w.aws.calls == calls


def test_a_pending_grant_past_its_expiry_expires_without_becoming_active(w: World) -> None:
    w.aws.fail("associate", AwsUnavailable("RequestLimitExceeded"))
    with pytest.raises(AwsUnavailable):
        w.handle(grant_command(ttl=HOUR))
    [pending] = w.db.grants()
    assert pending.state is GrantState.PENDING
    w.clock.advance(HOUR)

    assert w.handle(ExpireGrants()) == []

    assert w.grant_of(pending.grant_id).state is GrantState.EXPIRED
    assert "grant.active" not in w.db.audit_actions()
    assert (w.aws.roles, w.aws.profiles, w.aws.associations) == ({}, {}, {})


def test_an_expiry_aws_refuses_for_now_stays_active_and_is_retried(w: World) -> None:
    grant = w.handle(grant_command(ttl=HOUR)).grant
    w.clock.advance(HOUR)
    w.aws.fail("disassociate", AwsUnavailable("Throttling"))

    assert w.handle(ExpireGrants()) == [at_home(INSTANCE)]
    # Not EXPIRED while AWS may still hold it: the next sweep finds it again.
    assert w.grant_of(grant.grant_id).state is GrantState.ACTIVE

    assert w.handle(ExpireGrants()) == []
    assert w.grant_of(grant.grant_id).state is GrantState.EXPIRED
    assert w.aws.associations == {}


def test_an_expired_grant_another_callers_convergence_meets_is_expired_by_the_system(
    w: World,
) -> None:
    short = w.handle(grant_command("photos", ttl=HOUR)).grant
    w.clock.advance(HOUR)

    w.handle(grant_command("logs", Access.READ, actor="bob"))

    assert w.grant_of(short.grant_id).state is GrantState.EXPIRED
    [event] = [e for e in w.db.snapshot().audit if e.action == "grant.expired"]
    assert event.actor == SYSTEM_ACTOR
    assert w.aws.roles[ROLE].policies[POLICY] == policy_of(("logs", "", Access.READ))


def test_the_servers_default_ttl_applies_to_a_grant_without_one(w: World) -> None:
    w = limited(w, default_ttl=2 * HOUR)

    defaulted = w.handle(grant_command("photos")).grant
    explicit = w.handle(grant_command("logs", ttl=HOUR)).grant

    assert defaulted.expires_at == START + 2 * HOUR
    assert explicit.expires_at == START + HOUR


def test_without_a_default_the_maximum_bounds_a_grant_without_ttl(w: World) -> None:
    assert w.handle(grant_command("photos")).grant.expires_at is None

    w = limited(w, max_ttl=4 * HOUR)
    assert w.handle(grant_command("logs")).grant.expires_at == START + 4 * HOUR


def test_a_ttl_over_the_maximum_is_refused_naming_it_and_writing_nothing(w: World) -> None:
    w = limited(w, max_ttl=8 * HOUR)

    with pytest.raises(InvalidRequest, match="must be at most 8h, the server's maximum"):
        w.handle(grant_command(ttl=8 * HOUR + timedelta(seconds=1)))

    assert w.db.commits == 0
    assert w.handle(grant_command(ttl=8 * HOUR)).grant.state is GrantState.ACTIVE


def test_a_grant_extended_while_the_sweep_withdraws_it_is_put_back(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = w.handle(grant_command("photos", ttl=HOUR)).grant
    w.handle(grant_command("logs", Access.READ))
    w.clock.advance(HOUR)
    put_role_policy, puts = w.aws.put_role_policy, len(w.aws.writes("put_role_policy"))

    def extended_meanwhile(
        role_name: str, policy_name: str, document: str, *, after_boundary: bool = False
    ) -> None:
        put_role_policy(role_name, policy_name, document, after_boundary=after_boundary)
        if len(w.aws.writes("put_role_policy")) == puts + 1:
            # A repeated GrantAccess, decided just before the expiry, records its extension
            # without the instance's lock: here, as the sweep withdraws the grant.
            with w.db() as uow:
                uow.grants.save(short.extended_to(START + 2 * HOUR, w.clock.now()))
                uow.commit()

    monkeypatch.setattr(w.aws, "put_role_policy", extended_meanwhile)

    w.handle(ExpireGrants())

    kept = w.grant_of(short.grant_id)
    assert (kept.state, kept.expires_at) == (GrantState.ACTIVE, START + 2 * HOUR)
    assert w.aws.roles[ROLE].policies[POLICY] == policy_of(
        ("photos", "", Access.UPLOAD), ("logs", "", Access.READ)
    )


def test_the_sweep_ends_the_grants_of_several_instances_at_once(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for instance_id in INSTANCES:
        w.handle(grant_command("photos", ttl=HOUR, instance_id=instance_id))
    w.clock.advance(HOUR)
    # Each teardown waits for the other's: one instance after the other would never meet.
    together, delete_role = (
        threading.Barrier(len(INSTANCES), timeout=WAIT_SECONDS),
        w.aws.delete_role,
    )

    def meeting(name: str) -> None:
        together.wait()
        delete_role(name)

    monkeypatch.setattr(w.aws, "delete_role", meeting)

    assert w.handle(ExpireGrants()) == []
    assert {g.state for g in w.db.grants()} == {GrantState.EXPIRED}
    assert w.aws.roles == {}
