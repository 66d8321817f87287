"""BotoAccounts against the emulator over HTTP: a spoke account reached by assuming its role.

moto keeps one backend per account: a role seeded in a spoke account's backend is assumed from
the home account's admin key, and calls made with the assumed credentials act in the spoke,
authorized against that role's policies. Each test module's spoke account is a fresh id, so
the figures read there are this module's alone.

What moto (5.2.x) does not do: it checks neither the role's trust policy across accounts nor
the external id (AssumeRole with a wrong one, or none, succeeds), and assuming a role that does
not exist succeeds, after which every call with those credentials answers HTTP 500 (an HTML
page). Refusals of AssumeRole come from the caller's own policies.
"""

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.backends import get_backend

from broker.adapters.aws.accounts import ROLE_SESSION_NAME, BotoAccounts
from broker.adapters.aws.clients import StaticCredentials
from broker.adapters.aws.retry import RetryBudgets
from broker.adapters.aws.tally import CallTally
from broker.bootstrap import check_boundaries, read_boundaries_again
from broker.domain.accounts import Account, Accounts
from broker.domain.boundary import REFUSES_ALL, Boundaries, BoundaryReach, boundary_document
from broker.domain.errors import AwsRejected, AwsUnavailable
from broker.domain.naming import DEFAULT_ROLE_PATH
from broker.domain.places import HOME_ACCOUNT, Place
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator
from broker.sandbox.emulator import ACCOUNT_ID, SANDBOX_AMI_ID, Credentials
from broker.settings import ConfigurationError
from tests.integration.aws.names import unique
from tests.moto_accounts import fresh_account_id, iam_backend, seed_role

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
# Tags make CreateRole and CreateInstanceProfile need iam:Tag* as well.
TAGS = {"purpose": "accessbroker-test"}
# What the broker may do in the spoke: enough for these tests, and not CreateInstanceProfile.
SPOKE_PERMISSIONS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:CreateRole",
                "iam:TagRole",
                "iam:GetAccountSummary",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "ec2:DescribeInstances",
                "ec2:RunInstances",
                "ec2:TerminateInstances",
            ],
            "Resource": "*",
        }
    ],
}


def assumed_by_broker(account_id: str) -> list[Any]:
    """Every AssumeRole the broker made into the account, as moto's STS recorded it."""
    roles = get_backend("sts")[account_id]["aws"].assumed_roles
    return [r for r in roles if r.session_name == ROLE_SESSION_NAME]


class Spoke:
    """A spoke account in the emulator: its id and the role the broker assumes there."""

    def __init__(self) -> None:
        self.id = fresh_account_id()
        self.role_name = unique("accessbroker-hub")
        self.external_id = unique("ext")
        self.role_arn = seed_role(
            self.id, self.role_name, SPOKE_PERMISSIONS, external_id=self.external_id
        )

    def account(self, external_id: str = "") -> Account:
        """The spoke as the accounts file names it (with another external id, if given)."""
        return Account(
            id=self.id,
            name="prod",
            regions=(REGION, OTHER_REGION),
            role_arn=self.role_arn,
            external_id=external_id or self.external_id,
        )

    def remove(self) -> None:
        iam_backend(self.id).delete_role_policy(self.role_name, "permissions")
        iam_backend(self.id).delete_role(self.role_name)


@pytest.fixture(scope="module")
def spoke(emulator: Emulator) -> Iterator[Spoke]:
    seeded = Spoke()
    yield seeded
    seeded.remove()


@pytest.fixture(scope="module")
def gone() -> Account:
    """An account whose role does not exist (moto lets it be assumed all the same)."""
    account_id = fresh_account_id()
    return Account(
        id=account_id,
        name="gone",
        regions=(REGION,),
        role_arn=f"arn:aws:iam::{account_id}:role/accessbroker-hub",
    )


@pytest.fixture
def accounts(spoke: Spoke, gone: Account) -> Accounts:
    return Accounts(Account(id="", name="home", regions=(REGION,)), (spoke.account(), gone))


@pytest.fixture
def tally() -> CallTally:
    return CallTally()


@pytest.fixture
def make(emulator: Emulator, tally: CallTally) -> Callable[..., BotoAccounts]:
    def make(
        accounts: Accounts,
        home_credentials: StaticCredentials | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> BotoAccounts:
        return BotoAccounts(
            accounts,
            endpoint_url=emulator.endpoint_url,
            home_credentials=home_credentials or emulator.admin_credentials,
            max_attempts=1,
            write_rate=None,
            adapter_options={
                "propagation_timeout": 2.0,
                # moto's HTTP 500 for an unreachable account is retried this long.
                "budgets": RetryBudgets(throttling=0.5, server_error=0.5, connection=0.5),
                "tally": tally,
            },
            now=now,
        )

    return make


@pytest.fixture
def aws(make: Callable[..., BotoAccounts], accounts: Accounts) -> BotoAccounts:
    return make(accounts)


@pytest.fixture
def role_name(spoke: Spoke) -> Iterator[str]:
    """A role name of the test's own, removed from both accounts afterwards."""
    name = unique("accessbroker-test")
    yield name
    for account_id in (spoke.id, ACCOUNT_ID):
        backend = iam_backend(account_id)
        if any(role.name == name for role in backend.get_roles()):
            backend.delete_role(name)


def assumed_credentials(emulator: Emulator, spoke: Spoke) -> Credentials:
    """The spoke role's credentials, for arranging things in the spoke as its owner would."""
    answer = emulator.client("sts").assume_role(
        RoleArn=spoke.role_arn, RoleSessionName="test-setup", ExternalId=spoke.external_id
    )["Credentials"]
    return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])


def test_a_role_created_through_a_spokes_iam_is_in_that_account_only(
    aws: BotoAccounts, spoke: Spoke, role_name: str
) -> None:
    created = aws.iam(spoke.id).create_role(role_name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, TAGS)

    assert created.arn == f"arn:aws:iam::{spoke.id}:role{DEFAULT_ROLE_PATH}{role_name}"
    assert aws.iam(spoke.id).get_role(role_name) == created
    assert aws.iam(HOME_ACCOUNT).get_role(role_name) is None
    assert [r.name for r in iam_backend(spoke.id).get_roles() if r.name == role_name]


def test_a_spoke_places_ec2_sees_the_spokes_instances_only(
    emulator: Emulator, aws: BotoAccounts, spoke: Spoke
) -> None:
    spoke_ec2 = emulator.client("ec2", assumed_credentials(emulator, spoke))
    launched = spoke_ec2.run_instances(
        ImageId=SANDBOX_AMI_ID, InstanceType="t3.micro", MinCount=1, MaxCount=1
    )
    in_spoke = launched["Instances"][0]["InstanceId"]
    at_home = emulator.run_instance()
    try:
        spoke_place, home_place = Place(spoke.id, REGION), Place(HOME_ACCOUNT, REGION)

        found = aws.ec2(spoke_place).find_instance(in_spoke)
        assert found is not None
        assert found.instance_id == in_spoke
        assert aws.ec2(spoke_place).find_instance(at_home) is None
        assert aws.ec2(home_place).find_instance(in_spoke) is None
        assert aws.ec2(home_place).find_instance(at_home) is not None
        # The spoke's other region is another EC2: the instance is not there either.
        assert aws.ec2(Place(spoke.id, OTHER_REGION)).find_instance(in_spoke) is None
    finally:
        spoke_ec2.terminate_instances(InstanceIds=[in_spoke])
        emulator.client("ec2").terminate_instances(InstanceIds=[at_home])


def test_the_role_is_assumed_on_first_use_once_and_with_the_external_id(
    aws: BotoAccounts, spoke: Spoke, tally: CallTally
) -> None:
    before = len(assumed_by_broker(spoke.id))
    iam, ec2 = aws.iam(spoke.id), aws.ec2(Place(spoke.id, REGION))
    # Building the adapters assumes nothing; the first call does.
    assert len(assumed_by_broker(spoke.id)) == before

    iam.get_role("accessbroker-absent")
    ec2.find_instance("i-0123456789abcdef0")
    aws.ec2(Place(spoke.id, OTHER_REGION)).find_instance("i-0123456789abcdef0")
    iam.account_usage()

    assumed = assumed_by_broker(spoke.id)[before:]
    assert len(assumed) == 1
    assert assumed[0].role_arn == spoke.role_arn
    assert assumed[0].external_id == spoke.external_id
    assert tally.counts()["sts", "AssumeRole", "success"] == 1
    # The same adapters again, not new ones.
    assert aws.iam(spoke.id) is iam
    assert aws.ec2(Place(spoke.id, REGION)) is ec2


def test_the_role_is_assumed_again_before_its_credentials_expire(
    make: Callable[..., BotoAccounts], accounts: Accounts, spoke: Spoke
) -> None:
    clock = [datetime.now(UTC)]
    aws = make(accounts, now=lambda: clock[0])
    iam = aws.iam(spoke.id)
    before = len(assumed_by_broker(spoke.id))

    iam.get_role("accessbroker-absent")
    iam.get_role("accessbroker-absent")
    assert len(assumed_by_broker(spoke.id)) == before + 1

    # 5 minutes before the hour's credentials expire: botocore refreshes them first. (Only
    # one call is made then: the new credentials last an hour by the emulator's own clock,
    # which is 5 minutes by this one.)
    clock[0] += timedelta(minutes=55)
    assert iam.get_role("accessbroker-absent") is None
    assert len(assumed_by_broker(spoke.id)) == before + 2


def test_an_account_whose_calls_all_fail_is_unavailable_and_the_others_work(
    aws: BotoAccounts, spoke: Spoke, gone: Account
) -> None:
    # The account, and why: moto's HTTP 500, retried within the server-error budget.
    named = rf"^account gone \({gone.id}\): AWS {{}} failed: .+; retried for 0.5s$"
    with pytest.raises(AwsUnavailable, match=named.format("GetRole")):
        aws.iam(gone.id).get_role("accessbroker-anything")
    with pytest.raises(AwsUnavailable, match=named.format("DescribeInstances")):
        aws.ec2(Place(gone.id, REGION)).find_instance("i-0123456789abcdef0")

    assert aws.iam(HOME_ACCOUNT).get_role("accessbroker-anything") is None
    assert aws.iam(spoke.id).get_role(spoke.role_name) is not None


@pytest.fixture
def cannot_assume(emulator: Emulator) -> Iterator[Credentials]:
    """A key of the home account allowed IAM and EC2, and not sts:AssumeRole."""
    backend, name = iam_backend(ACCOUNT_ID), unique("no-assume")
    backend.create_user(region_name=REGION, user_name=name)
    allowed = {"Effect": "Allow", "Action": ["iam:*", "ec2:*"], "Resource": "*"}
    backend.put_user_policy(
        name, "iam-ec2", json.dumps({"Version": "2012-10-17", "Statement": [allowed]})
    )
    key = backend.create_access_key(name)
    yield Credentials(key.access_key_id, key.secret_access_key)
    backend.delete_access_key(key.access_key_id, name)
    backend.delete_user_policy(name, "iam-ec2")
    backend.delete_user(name)


def test_a_refused_assume_role_makes_the_account_unavailable_naming_it(
    make: Callable[..., BotoAccounts],
    accounts: Accounts,
    spoke: Spoke,
    cannot_assume: Credentials,
    tally: CallTally,
) -> None:
    clock = [datetime.now(UTC)]
    aws = make(accounts, home_credentials=cannot_assume, now=lambda: clock[0])
    expected = (
        rf"^account prod \({spoke.id}\) cannot be reached: "
        rf"AssumeRole of {spoke.role_arn} failed: AccessDenied"
    )

    with pytest.raises(AwsUnavailable, match=expected + "$"):
        aws.iam(spoke.id).get_role("accessbroker-anything")
    # Not a refusal of the call itself (AwsRejected); and while the failure is recent, the next
    # call fails at once, saying so, without asking STS again.
    clock[0] += timedelta(seconds=12)
    with pytest.raises(
        AwsUnavailable, match=expected + r" \(12 s ago; tried again 30 s after\)$"
    ) as raised:
        aws.ec2(Place(spoke.id, REGION)).find_instance("i-0123456789abcdef0")
    assert not isinstance(raised.value, AwsRejected)
    assert tally.counts()["sts", "AssumeRole", "client_error"] == 1
    assert aws.iam(HOME_ACCOUNT).get_role("accessbroker-anything") is None  # home unaffected
    # Once the 30 s have passed, STS is asked again.
    clock[0] += timedelta(seconds=19)
    with pytest.raises(AwsUnavailable, match=expected + "$"):
        aws.iam(spoke.id).get_role("accessbroker-anything")
    assert tally.counts()["sts", "AssumeRole", "client_error"] == 2


def test_an_account_changed_by_a_reload_is_tried_again_at_once(
    make: Callable[..., BotoAccounts],
    accounts: Accounts,
    spoke: Spoke,
    cannot_assume: Credentials,
    tally: CallTally,
) -> None:
    """Its fix may be what changed (another role, another external id): no waiting it out."""
    aws = make(accounts, home_credentials=cannot_assume)
    with pytest.raises(AwsUnavailable, match=r"AssumeRole .* failed: AccessDenied$"):
        aws.iam(spoke.id).get_role("accessbroker-anything")

    aws.reload(Accounts(accounts.home, (spoke.account(external_id=unique("ext")),)))

    with pytest.raises(AwsUnavailable, match=r"AssumeRole .* failed: AccessDenied$"):
        aws.iam(spoke.id).get_role("accessbroker-anything")
    assert tally.counts()["sts", "AssumeRole", "client_error"] == 2


def test_calls_in_a_spoke_are_authorized_against_the_spokes_role(
    aws: BotoAccounts, spoke: Spoke
) -> None:
    # The role may create roles, not instance profiles (the home admin may do anything).
    with pytest.raises(AwsRejected, match="CreateInstanceProfile failed: AccessDenied"):
        aws.iam(spoke.id).create_instance_profile(
            unique("accessbroker-test"), DEFAULT_ROLE_PATH, TAGS
        )


def test_account_usage_reads_the_accounts_own_figures(
    aws: BotoAccounts, spoke: Spoke, role_name: str
) -> None:
    spoke_iam, home_iam = aws.iam(spoke.id), aws.iam(HOME_ACCOUNT)
    spoke_before, home_before = spoke_iam.account_usage(), home_iam.account_usage()
    assert spoke_before.roles >= 1  # the broker's own role there
    assert spoke_before.roles_quota > 0
    assert spoke_before.instance_profiles_quota > 0

    spoke_iam.create_role(role_name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, TAGS)

    spoke_after = spoke_iam.account_usage()
    assert spoke_after.roles == spoke_before.roles + 1
    assert spoke_after.instance_profiles == spoke_before.instance_profiles
    assert spoke_after.roles_quota == spoke_before.roles_quota
    assert home_iam.account_usage() == home_before


def test_reload_keeps_unchanged_accounts_and_rebuilds_changed_ones(
    aws: BotoAccounts, accounts: Accounts, spoke: Spoke, gone: Account
) -> None:
    iam, home_iam = aws.iam(spoke.id), aws.iam(HOME_ACCOUNT)
    iam.get_role("accessbroker-absent")
    before = len(assumed_by_broker(spoke.id))

    aws.reload(Accounts(accounts.home, (spoke.account(), gone)))
    assert aws.iam(spoke.id) is iam
    assert aws.iam(HOME_ACCOUNT) is home_iam
    aws.iam(spoke.id).get_role("accessbroker-absent")
    assert len(assumed_by_broker(spoke.id)) == before

    # A new external id: new adapters, whose first call assumes the role with it.
    aws.reload(Accounts(accounts.home, (spoke.account(external_id="rotated"),)))
    assert aws.iam(spoke.id) is not iam
    assert aws.iam(HOME_ACCOUNT) is home_iam
    aws.iam(spoke.id).get_role("accessbroker-absent")
    assumed = assumed_by_broker(spoke.id)[before:]
    assert [a.external_id for a in assumed] == ["rotated"]

    # An account no longer configured has no adapters: its grants wait, saying why.
    with pytest.raises(AwsUnavailable, match=f"account {gone.id} .* not configured"):
        aws.iam(gone.id)


def test_the_boundary_is_checked_in_every_account_and_an_unreachable_one_only_logged(
    aws: BotoAccounts,
    accounts: Accounts,
    spoke: Spoke,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home_boundary = emulator.permissions_boundary()
    emulator.permissions_boundary(spoke.id)

    with caplog.at_level(logging.WARNING, logger="broker.bootstrap"):
        read = check_boundaries(aws, accounts.all, home_boundary)

    assert set(read.reach) == {HOME_ACCOUNT, spoke.id}  # not `gone`: its grants go unchecked

    [unchecked] = [r.getMessage() for r in caplog.records if r.name == "broker.bootstrap"]
    assert unchecked.startswith("could not check the permissions boundary in account gone")


def test_a_spoke_without_its_boundary_stops_the_broker(
    make: Callable[..., BotoAccounts], emulator: Emulator
) -> None:
    bare = Spoke()
    accounts = Accounts(Account(id="", name="home", regions=(REGION,)), (bare.account(),))
    missing = f"arn:aws:iam::{bare.id}:policy/accessbroker-boundary"
    try:
        with pytest.raises(ConfigurationError, match=f"permissions boundary {missing}: no such"):
            check_boundaries(make(accounts), accounts.all, emulator.permissions_boundary())
    finally:
        bare.remove()


def test_a_reload_reads_each_served_accounts_boundary_again_without_being_held_back(
    make: Callable[..., BotoAccounts],
    gone: Account,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A boundary gone from a served account refuses that account's grants (logged) rather than
    keep the policy file from reloading; an account AWS does not answer for keeps its reading."""
    bare = Spoke()  # its boundary was there at start, and has been deleted since
    home = Account(id="", name="home", regions=(REGION,))
    served = Accounts(home, (bare.account(), gone))
    arn = emulator.permissions_boundary()
    widened = BoundaryReach.of(boundary_document(["*"]))
    in_force = Boundaries({HOME_ACCOUNT: widened, bare.id: widened, gone.id: widened})

    try:
        with caplog.at_level(logging.WARNING, logger="broker.bootstrap"):
            again = read_boundaries_again(make(served), served, served, in_force, arn)
    finally:
        bare.remove()

    assert again.reach[bare.id] is REFUSES_ALL
    assert again.reach[gone.id] is widened  # AWS did not answer: the reading in force stays
    assert again.reach[HOME_ACCOUNT] == widened
    assert any("new grants in account prod" in r.getMessage() for r in caplog.records)
