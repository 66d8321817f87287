"""remove_orphans: what the broker created and no grant needs is torn down, nothing else."""

import json

import pytest

from broker.domain.access import GrantState
from broker.domain.audit import SYSTEM_ACTOR
from broker.domain.errors import AwsUnavailable
from broker.domain.naming import DEFAULT_ROLE_PATH, ManagedNames
from broker.domain.trust import EC2_TRUST_POLICY
from broker.service.commands import RemoveOrphans, RevokeAccess
from tests.places import at_home
from tests.unit.service.fakes import (
    INSTANCE,
    OTHER_INSTANCE,
    POLICY,
    FakeProfile,
    FakeRole,
    World,
    grant_command,
)

THIRD_INSTANCE = "i-0aaaaaaaaaaaaaaa1"
# The instances that exist in the world `w` (tests/unit/conftest.py).
INSTANCES = (INSTANCE, OTHER_INSTANCE, THIRD_INSTANCE)


def leave_behind(
    w: World, instance_id: str, *, profile: bool = True, associate: bool = False
) -> None:
    """What a broker that crashed midway through a grant (its record lost) leaves in AWS."""
    names = ManagedNames(at_home(instance_id), DEFAULT_ROLE_PATH)
    w.aws.create_role(names.role_name, names.path, EC2_TRUST_POLICY, names.tags)
    w.aws.put_role_policy(names.role_name, POLICY, json.dumps({"Statement": []}))
    if profile:
        w.aws.create_instance_profile(names.profile_name, names.path, names.tags)
        w.aws.add_role_to_instance_profile(names.profile_name, names.role_name)
    if associate:
        w.aws.associate(instance_id, names.profile_name)
    w.aws.calls.clear()


def test_resources_no_grant_needs_are_torn_down_and_audited_by_the_system(w: World) -> None:
    leave_behind(w, OTHER_INSTANCE, associate=True)
    leave_behind(w, THIRD_INSTANCE, profile=False)

    swept = w.handle(RemoveOrphans())

    assert (swept.removed, swept.unfinished) == (
        sorted([at_home(OTHER_INSTANCE), at_home(THIRD_INSTANCE)]),
        [],
    )
    assert w.aws.roles == {} and w.aws.profiles == {} and w.aws.associations == {}
    events = w.db.snapshot().audit
    assert {e.actor for e in events} == {SYSTEM_ACTOR}
    other = [e.action for e in events if e.instance_id == OTHER_INSTANCE]
    assert other == [
        "instance.orphan_found",
        # What was left behind enters the trail as found, so replaying the trail matches AWS.
        "aws.create_role",
        "aws.put_policy",
        "aws.create_profile",
        "aws.add_role_to_profile",
        "aws.associate",
        "aws.disassociate",
        "aws.remove_role_from_profile",
        "aws.delete_profile",
        "aws.delete_policy",
        "aws.delete_role",
    ]


def test_instances_with_live_grants_are_left_alone(w: World) -> None:
    w.handle(grant_command(instance_id=INSTANCE))
    revoking = w.handle(grant_command(instance_id=OTHER_INSTANCE)).grant
    w.aws.fail("delete_role", AwsUnavailable("Throttling"))
    with pytest.raises(AwsUnavailable):
        w.handle(RevokeAccess(grant_id=revoking.grant_id))
    w.aws.calls.clear()
    audited = len(w.db.snapshot().audit)

    swept = w.handle(RemoveOrphans())

    assert swept.removed == []
    assert w.aws.calls == []
    assert len(w.db.snapshot().audit) == audited
    assert {g.instance_id: g.state for g in w.db.grants()} == {
        INSTANCE: GrantState.ACTIVE,
        OTHER_INSTANCE: GrantState.REVOKING,
    }


def test_look_alikes_the_broker_did_not_create_are_never_touched(w: World) -> None:
    role = f"accessbroker-{OTHER_INSTANCE}"
    w.aws.roles[role] = FakeRole(role, DEFAULT_ROLE_PATH, {}, {})  # untagged, on the path
    elsewhere = ManagedNames(at_home(THIRD_INSTANCE), "/elsewhere/")  # tagged, on another path
    w.aws.roles[elsewhere.role_name] = FakeRole(
        elsewhere.role_name, elsewhere.path, {}, elsewhere.tags
    )
    w.aws.profiles[elsewhere.profile_name] = FakeProfile(
        elsewhere.profile_name, elsewhere.path, elsewhere.tags, [elsewhere.role_name]
    )

    swept = w.handle(RemoveOrphans())

    assert swept.removed == []
    assert set(w.aws.roles) == {role, elsewhere.role_name}
    assert set(w.aws.profiles) == {elsewhere.profile_name}
    assert w.db.audit_actions() == []


def test_a_teardown_that_fails_is_reported_and_done_by_a_later_pass(w: World) -> None:
    leave_behind(w, OTHER_INSTANCE)
    w.aws.fail("delete_role", AwsUnavailable("Throttling"))

    assert w.handle(RemoveOrphans()).unfinished == [at_home(OTHER_INSTANCE)]
    assert list(w.aws.roles) == [f"accessbroker-{OTHER_INSTANCE}"]

    assert w.handle(RemoveOrphans()).removed == [at_home(OTHER_INSTANCE)]
    assert w.aws.roles == {}
