"""Accounts: how a request's `account` and `region` name a configured place, or are refused."""

import pytest

from broker.domain.accounts import Account, Accounts
from broker.domain.errors import InvalidRequest
from broker.domain.places import HOME_ACCOUNT, InstanceRef, Place, PlaceFilter

PROD_ID = "222222222222"
HOME = Account(id="111111111111", name="hub", regions=("us-east-1", "us-west-2"))
PROD = Account(
    id=PROD_ID,
    name="prod",
    regions=("eu-west-1", "us-east-1"),
    role_arn=f"arn:aws:iam::{PROD_ID}:role/accessbroker-spoke",
)
ACCOUNTS = Accounts(HOME, (PROD,))


@pytest.mark.parametrize(
    ("account", "region", "place"),
    [
        ("", "", Place(HOME_ACCOUNT, "us-east-1")),
        ("hub", "us-west-2", Place(HOME_ACCOUNT, "us-west-2")),
        ("111111111111", "", Place(HOME_ACCOUNT, "us-east-1")),
        ("prod", "", Place(PROD_ID, "eu-west-1")),
        (PROD_ID, "us-east-1", Place(PROD_ID, "us-east-1")),
    ],
)
def test_a_request_names_an_account_by_id_or_name_and_its_region_defaults_to_the_first(
    account: str, region: str, place: Place
) -> None:
    assert ACCOUNTS.place_for(account, region) == place


@pytest.mark.parametrize(
    ("account", "region", "field", "problem"),
    [
        ("dev", "", "account", "account 'dev' is not configured"),
        ("prod", "us-west-2", "region", "region 'us-west-2' is not configured for account prod"),
        ("", "eu-west-1", "region", "region 'eu-west-1' is not configured for account hub"),
    ],
)
def test_a_place_not_configured_is_refused_naming_every_configured_one(
    account: str, region: str, field: str, problem: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        ACCOUNTS.place_for(account, region)

    (violation,) = refused.value.violations
    assert violation.field == field
    assert violation.description == (
        f"{problem} (configured: hub (111111111111): us-east-1, us-west-2; "
        f"prod ({PROD_ID}): eu-west-1, us-east-1)"
    )


def test_without_an_accounts_file_there_is_one_place_the_home_account_in_its_region() -> None:
    single = Accounts.single("ap-southeast-2")

    assert single.places() == [Place(HOME_ACCOUNT, "ap-southeast-2")]
    assert single.place_for("", "") == Place(HOME_ACCOUNT, "ap-southeast-2")
    assert single.place_for("home", "") == Place(HOME_ACCOUNT, "ap-southeast-2")
    with pytest.raises(InvalidRequest):
        single.place_for("", "us-east-1")


def test_the_sweeps_visit_every_configured_place() -> None:
    assert ACCOUNTS.places() == [
        Place(HOME_ACCOUNT, "us-east-1"),
        Place(HOME_ACCOUNT, "us-west-2"),
        Place(PROD_ID, "eu-west-1"),
        Place(PROD_ID, "us-east-1"),
    ]


def test_a_recorded_place_is_traced_back_to_its_account() -> None:
    assert ACCOUNTS.account_of(Place(PROD_ID, "us-east-1")) == PROD
    assert ACCOUNTS.account_of(Place(HOME_ACCOUNT, "us-west-2")) == HOME
    assert PROD.aliases == {"prod", PROD_ID}
    assert (PROD.key, HOME.key) == (PROD_ID, HOME_ACCOUNT)


@pytest.mark.parametrize(
    ("account", "region", "places"),
    [
        ("", "", PlaceFilter()),
        ("prod", "", PlaceFilter(PROD_ID, None)),
        ("", "us-east-1", PlaceFilter(None, "us-east-1")),
        ("hub", "us-west-2", PlaceFilter(HOME_ACCOUNT, "us-west-2")),
    ],
)
def test_a_listing_names_any_place_unless_told(
    account: str, region: str, places: PlaceFilter
) -> None:
    assert ACCOUNTS.filter_for(account, region) == places


def test_a_listing_of_places_not_configured_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="account 'dev' is not configured"):
        ACCOUNTS.filter_for("dev", "")
    with pytest.raises(InvalidRequest, match="region 'ap-south-1' is not configured"):
        ACCOUNTS.filter_for("", "ap-south-1")


def test_a_filter_holds_the_places_it_names() -> None:
    prod_ireland = Place(PROD_ID, "eu-west-1")
    assert PlaceFilter().holds(prod_ireland)
    assert PlaceFilter(PROD_ID, None).holds(prod_ireland)
    assert not PlaceFilter(HOME_ACCOUNT, None).holds(prod_ireland)
    assert not PlaceFilter(None, "us-east-1").holds(prod_ireland)


def test_an_instance_names_itself_by_where_it_lives() -> None:
    at_home = InstanceRef(Place(HOME_ACCOUNT, "us-east-1"), "i-0123456789abcdef0")
    in_prod = InstanceRef(Place(PROD_ID, "us-east-1"), "i-0123456789abcdef0")

    assert str(at_home) == "i-0123456789abcdef0"
    assert str(in_prod) == f"i-0123456789abcdef0 in {PROD_ID}/us-east-1"
    assert at_home.key != in_prod.key
