"""Many accounts and regions: each instance is converged where it lives, with that account's
AWS, and one account's trouble stays that account's."""

import json

import pytest

from broker.domain.access import Access, GrantState
from broker.domain.accounts import Account, Accounts
from broker.domain.authorization import AccessPolicy, Rule
from broker.domain.errors import AwsQuotaExceeded, AwsUnavailable, PermissionDenied
from broker.domain.naming import DEFAULT_ROLE_PATH, ManagedNames
from broker.domain.places import InstanceRef, Place
from broker.domain.trust import EC2_TRUST_POLICY
from broker.service.commands import (
    ListAuditEvents,
    ListGrants,
    MeasureQuotas,
    Reconcile,
    RemoveOrphans,
    RepairDrift,
    WatchAuditEvents,
)
from tests.places import HOME_REGION, at_home
from tests.unit.service.fakes import (
    INSTANCE,
    OTHER_INSTANCE,
    ROLE,
    FakeAws,
    World,
    grant_command,
)

PROD_ID = "222222222222"
PROD = Account(
    id=PROD_ID,
    name="prod",
    regions=("us-east-1", "eu-west-1"),
    role_arn=f"arn:aws:iam::{PROD_ID}:role/accessbroker-spoke",
)
PROD_VIRGINIA, PROD_IRELAND = Place(PROD_ID, "us-east-1"), Place(PROD_ID, "eu-west-1")
UNREACHABLE = AwsUnavailable(f"account prod ({PROD_ID}) cannot be reached: AssumeRole failed")


@pytest.fixture
def prod() -> FakeAws:
    """The prod account's IAM, and its us-east-1 EC2, where INSTANCE also exists."""
    return FakeAws((INSTANCE,))


@pytest.fixture
def ireland() -> FakeAws:
    return FakeAws((INSTANCE,))


@pytest.fixture
def many(w: World, prod: FakeAws, ireland: FakeAws) -> World:
    accounts = Accounts(Account(id="", name="home", regions=(HOME_REGION,)), (PROD,))
    return w.with_accounts(accounts, {PROD_VIRGINIA: prod, PROD_IRELAND: ireland})


def test_a_grant_is_carried_out_in_the_account_and_region_it_names(
    many: World, prod: FakeAws, ireland: FakeAws
) -> None:
    granted = many.handle(grant_command(account="prod")).grant

    assert (granted.state, granted.place) == (GrantState.ACTIVE, PROD_VIRGINIA)
    assert list(prod.roles) == [ROLE]
    assert prod.associations[INSTANCE].profile_arn.endswith(f"/{ROLE}")
    assert many.aws.roles == {} and many.aws.calls == []
    assert ireland.calls == []


def test_a_spokes_roles_carry_the_boundary_of_the_same_name_in_that_account(
    many: World, prod: FakeAws
) -> None:
    home_boundary = "arn:aws:iam::111111111111:policy/accessbroker-boundary"
    bounded = many.with_options(permissions_boundary_arn=home_boundary)

    bounded.handle(grant_command(account="prod"))
    bounded.handle(grant_command(bucket="at-home"))

    assert prod.roles[ROLE].boundary == f"arn:aws:iam::{PROD_ID}:policy/accessbroker-boundary"
    assert many.aws.roles[ROLE].boundary == home_boundary


def test_the_audit_trail_of_one_account_holds_that_accounts_instance_only(many: World) -> None:
    many.handle(grant_command(account="prod"))
    many.handle(grant_command())  # the same instance id, at home

    def instances_of(account: str = "") -> set[tuple[str, str]]:
        events = many.handle(ListAuditEvents(instance_id=INSTANCE, account=account)).items
        return {(e.detail.get("account", ""), e.detail["region"]) for e in events}

    assert instances_of(account="prod") == {(PROD_ID, "us-east-1")}
    assert instances_of(account="home") == {("", HOME_REGION)}
    assert instances_of() == {(PROD_ID, "us-east-1"), ("", HOME_REGION)}
    followed = many.handle(WatchAuditEvents(instance_id=INSTANCE, account="prod", after=0))
    assert {e.detail.get("account") for e in followed.follow(lambda: False)} == {PROD_ID}


def test_the_same_instance_id_in_two_accounts_is_two_instances(many: World, prod: FakeAws) -> None:
    at_prod = many.handle(grant_command("photos", account="prod")).grant
    at_home_grant = many.handle(grant_command("music")).grant

    many.revoke(at_prod.grant_id)

    assert at_prod.grant_id != at_home_grant.grant_id
    assert prod.roles == {} and prod.associations == {}
    assert ROLE in many.aws.roles and INSTANCE in many.aws.associations
    listed = many.handle(ListGrants(instance_id=INSTANCE, account="home"))
    assert [g.grant_id for g in listed.items] == [at_home_grant.grant_id]


def test_an_unreachable_account_fails_its_own_requests_only(many: World, prod: FakeAws) -> None:
    prod.fail("find_instance", UNREACHABLE)

    with pytest.raises(AwsUnavailable):
        many.handle(grant_command(account="prod"))
    at_home_grant = many.handle(grant_command()).grant

    assert at_home_grant.state is GrantState.ACTIVE
    assert prod.calls == []


def test_a_new_role_past_the_quota_headroom_is_refused_naming_the_account(
    many: World, prod: FakeAws
) -> None:
    prod.roles_quota = 20  # 5% of it kept free: 19 roles at most
    for n in range(19):
        prod.create_role(f"someone-{n}", "/", EC2_TRUST_POLICY, {})
    prod.calls.clear()

    with pytest.raises(AwsQuotaExceeded) as refused:
        many.handle(grant_command(account="prod"))

    assert str(refused.value) == (
        f"account prod ({PROD_ID}) is near its IAM quotas (roles: 19 of 20 in use, and 5% of "
        "the quota is kept free)"
    )
    assert prod.calls == []
    assert many.handle(ListGrants()).items == []


def test_the_quota_is_read_only_for_a_grant_that_needs_a_new_role(
    many: World, prod: FakeAws
) -> None:
    many.handle(grant_command("photos", account="prod"))
    prod.roles_quota = 1  # full now; the instance's role exists already
    reads = prod.entered["account_usage"]

    again = many.handle(grant_command("logs", account="prod")).grant

    assert again.state is GrantState.ACTIVE
    assert prod.entered["account_usage"] == reads == 1


def test_orphans_are_found_in_every_account_where_their_tags_place_them(
    many: World, prod: FakeAws, ireland: FakeAws
) -> None:
    irish = ManagedNames(InstanceRef(PROD_IRELAND, INSTANCE), DEFAULT_ROLE_PATH)
    prod.create_role(irish.role_name, irish.path, EC2_TRUST_POLICY, irish.tags)
    prod.put_role_policy(irish.role_name, "accessbroker-grants", json.dumps({"Statement": []}))
    unserved = InstanceRef(Place(PROD_ID, "ap-south-1"), "i-0aaaaaaaaaaaaaaa1")
    elsewhere = ManagedNames(unserved, DEFAULT_ROLE_PATH)
    prod.create_role(elsewhere.role_name, elsewhere.path, EC2_TRUST_POLICY, elsewhere.tags)

    swept = many.handle(RemoveOrphans())

    assert swept.removed == [InstanceRef(PROD_IRELAND, INSTANCE)]
    assert irish.role_name not in prod.roles
    # A region no longer configured is left alone: the broker cannot reach its instances.
    assert elsewhere.role_name in prod.roles
    orphaned = [e for e in many.db.snapshot().audit if e.action == "instance.orphan_found"]
    assert [e.detail["account"] for e in orphaned] == [PROD_ID]
    assert [e.detail["region"] for e in orphaned] == ["eu-west-1"]


def test_an_unreachable_account_does_not_stop_the_orphan_sweep_elsewhere(
    many: World, prod: FakeAws
) -> None:
    names = ManagedNames(at_home(INSTANCE), DEFAULT_ROLE_PATH)
    many.aws.create_role(names.role_name, names.path, EC2_TRUST_POLICY, names.tags)
    prod.fail("managed_instances", UNREACHABLE)

    swept = many.handle(RemoveOrphans())

    assert swept.removed == [at_home(INSTANCE)]


def test_the_sweep_screens_drift_per_place_and_an_unreachable_one_waits(
    many: World, prod: FakeAws
) -> None:
    many.handle(grant_command("photos", account="prod"))
    many.handle(grant_command("music"))
    many.aws.delete_role_policy(ROLE, "accessbroker-grants")
    prod.delete_role_policy(ROLE, "accessbroker-grants")
    prod.fail("list_broker_roles", UNREACHABLE)

    swept = many.handle(RepairDrift())

    assert [(f.drift.instance, f.drift.kind.value, f.repaired) for f in swept] == [
        (at_home(INSTANCE), "policy", True)
    ]
    only_prod = many.handle(Reconcile(account="prod", dry_run=True))
    assert [f.drift.instance for f in only_prod] == [InstanceRef(PROD_VIRGINIA, INSTANCE)]


def test_reconciling_every_instance_says_which_account_could_not_be_read(
    many: World, prod: FakeAws
) -> None:
    many.handle(grant_command("photos", account="prod"))
    prod.fail("list_broker_roles", UNREACHABLE)

    with pytest.raises(AwsUnavailable):
        many.handle(Reconcile(dry_run=True))


def test_a_rule_naming_accounts_allows_grants_there_only(many: World) -> None:
    rule = Rule(1, ("*",), ("*",), frozenset(Access), accounts=("prod",))
    ruled = many.with_policy(AccessPolicy(rules=(rule,)))

    granted = ruled.handle(grant_command(account=PROD_ID, actor="alice")).grant
    with pytest.raises(PermissionDenied, match="account home is not one of prod"):
        ruled.handle(grant_command(actor="alice"))

    assert granted.place == PROD_VIRGINIA


def test_admissions_count_on_the_last_reading_instead_of_reading_again(
    many: World, prod: FakeAws
) -> None:
    prod.instances.add(OTHER_INSTANCE)
    prod.roles_quota = prod.profiles_quota = 21  # 5% kept free: 19.95, so 19 roles at most
    for n in range(18):
        prod.create_role(f"someone-{n}", "/", EC2_TRUST_POLICY, {})
    assert many.handle(MeasureQuotas()) == []
    read_by_the_sweep = prod.entered["account_usage"]

    first = many.handle(grant_command(account="prod")).grant
    with pytest.raises(AwsQuotaExceeded, match="roles: 19 of 21 in use"):
        many.handle(grant_command(account="prod", instance_id=OTHER_INSTANCE))

    assert first.state is GrantState.ACTIVE
    assert len(prod.roles) == 19
    assert prod.entered["account_usage"] == read_by_the_sweep


def test_a_dry_run_is_refused_as_the_grant_would_be_but_takes_nothing(
    many: World, prod: FakeAws
) -> None:
    prod.roles_quota = prod.profiles_quota = 21
    for n in range(18):
        prod.create_role(f"someone-{n}", "/", EC2_TRUST_POLICY, {})

    for _ in range(3):
        preview = many.handle(grant_command(account="prod", dry_run=True))
        assert preview.planned_changes[0].startswith("create role")

    assert many.handle(grant_command(account="prod")).grant.state is GrantState.ACTIVE


def test_an_untagged_role_is_kept_while_any_region_of_its_account_has_a_live_grant(
    w: World, prod: FakeAws
) -> None:
    """Roles made before regions were carry no region tag and are taken for the account's first
    region's; the home regions may since have been reordered."""
    w.handle(grant_command())
    untagged = {k: v for k, v in w.aws.roles[ROLE].tags.items() if k != "accessbroker:region"}
    w.aws.roles[ROLE].tags = untagged
    reordered = Accounts(Account(id="", name="home", regions=("eu-west-1", HOME_REGION)))
    ireland = FakeAws((INSTANCE,))

    swept = w.with_accounts(reordered, {Place("", "eu-west-1"): ireland}).handle(RemoveOrphans())

    assert swept.removed == []
    assert ROLE in w.aws.roles


def test_home_is_always_a_name_of_the_broker_s_own_account(many: World) -> None:
    renamed = Accounts(Account(id="111111111111", name="hub", regions=(HOME_REGION,)), (PROD,))
    hub = many.with_accounts(renamed, {PROD_VIRGINIA: FakeAws((INSTANCE,))})

    granted = hub.handle(grant_command(account="home")).grant

    assert granted.place == Place("", HOME_REGION)
    assert [g.grant_id for g in hub.handle(ListGrants(account="hub")).items] == [granted.grant_id]
