"""A drift pass over every instance screens them all from two bulk reads, then examines one by
one only those the screen suspects: whatever drift an instance's own examination finds, the
pass finds too, and an instance that has not drifted costs no read of its own."""

from collections.abc import Callable

import pytest

from broker.service.commands import Reconcile, RepairDrift
from tests.unit.service.fakes import (
    ACCOUNT,
    INSTANCE,
    OTHER_INSTANCE,
    POLICY,
    ROLE,
    FakeRole,
    World,
    grant_command,
)

THIRD_INSTANCE = "i-0aaaabbbbccccdddd"
INSTANCES = (INSTANCE, OTHER_INSTANCE, THIRD_INSTANCE)
OPERATOR = "ops@example.com"
SCREEN_READS = {"list_broker_roles", "describe_many"}
UNMANAGED = {"owner": "someone-else"}


def _delete_policy(w: World) -> None:
    del w.aws.roles[ROLE].policies[POLICY]


def _widen_policy(w: World) -> None:
    w.aws.roles[ROLE].policies[POLICY] = {"Version": "2012-10-17", "Statement": []}


def _add_inline_policy(w: World) -> None:
    w.aws.roles[ROLE].policies["backdoor"] = {"Statement": []}


def _attach_policy(w: World) -> None:
    w.aws.roles[ROLE].attached.append("arn:aws:iam::aws:policy/AdministratorAccess")


def _widen_trust(w: World) -> None:
    w.aws.roles[ROLE].trust = {"Statement": [{"Principal": {"AWS": "*"}}]}


def _empty_profile(w: World) -> None:
    w.aws.profiles[ROLE].roles.clear()


def _delete_profile(w: World) -> None:
    w.aws.disassociate(w.aws.associations[INSTANCE].association_id)
    w.aws.profiles[ROLE].roles.clear()
    del w.aws.profiles[ROLE]


def _replace_role_with_anothers(w: World) -> None:
    role = w.aws.roles[ROLE]
    w.aws.roles[ROLE] = FakeRole(ROLE, role.path, role.trust, UNMANAGED, dict(role.policies))


def _disassociate(w: World) -> None:
    w.aws.disassociate(w.aws.associations[INSTANCE].association_id)


def _associate_foreign(w: World) -> None:
    _disassociate(w)
    w.aws.associate_foreign(INSTANCE, f"arn:aws:iam::{ACCOUNT}:instance-profile/TeamProfile")


def _terminate(w: World) -> None:
    w.aws.terminate(INSTANCE)


DRIFTS: dict[str, Callable[[World], None]] = {
    "policy deleted": _delete_policy,
    "policy edited": _widen_policy,
    "inline policy added": _add_inline_policy,
    "managed policy attached": _attach_policy,
    "trust widened": _widen_trust,
    "role taken out of the profile": _empty_profile,
    "profile deleted": _delete_profile,
    "role replaced by another's": _replace_role_with_anothers,
    "profile disassociated": _disassociate,
    "foreign profile associated": _associate_foreign,
    "instance terminated": _terminate,
}


@pytest.fixture
def managed(w: World) -> World:
    for instance_id in INSTANCES:
        w.handle(grant_command("photos", instance_id=instance_id))
    w.aws.calls.clear()
    w.aws.entered.clear()
    return w


@pytest.mark.parametrize("inject", DRIFTS.values(), ids=DRIFTS.keys())
def test_the_pass_finds_what_examining_the_instance_finds(
    managed: World, inject: Callable[[World], None]
) -> None:
    inject(managed)
    alone = managed.handle(Reconcile(instance_id=INSTANCE, dry_run=True, actor=OPERATOR))
    managed.aws.entered.clear()

    everywhere = managed.handle(Reconcile(instance_id="", dry_run=True, actor=OPERATOR))

    assert alone, "the injection made no drift"
    assert everywhere == alone
    # The others passed the screen: only the suspect was read on its own.
    assert managed.aws.entered["list_broker_roles"] == 1
    assert managed.aws.entered["describe_many"] == 1


def test_a_pass_over_instances_that_have_not_drifted_makes_only_the_screens_reads(
    managed: World,
) -> None:
    assert managed.handle(Reconcile(instance_id="", dry_run=True, actor=OPERATOR)) == []
    assert managed.handle(RepairDrift()) == []

    assert set(managed.aws.entered) == SCREEN_READS
    assert set(managed.aws.entered.values()) == {2}
    assert managed.aws.calls == []


def test_the_sweep_repairs_the_suspects_it_screened(managed: World) -> None:
    _delete_policy(managed)
    _attach_policy(managed)

    findings = managed.handle(RepairDrift())

    assert {(f.drift.instance_id, f.repaired) for f in findings} == {(INSTANCE, True)}
    assert list(managed.aws.roles[ROLE].policies) == [POLICY]
    assert managed.aws.roles[ROLE].attached == []


def test_an_instance_ec2_does_not_know_is_a_suspect_the_sweep_leaves_alone(
    managed: World,
) -> None:
    managed.aws.instances.discard(INSTANCE)

    assert managed.handle(RepairDrift()) == []
    assert managed.aws.entered["get_role"] == 1  # examined on its own, and left
    assert managed.aws.calls == []
