"""The accounts the broker starts (and reloads) with: where the home region comes from, and
that no place with live grants is left out."""

from pathlib import Path

import pytest

from broker.bootstrap import check_served, load_accounts
from broker.domain.accounts import Account, Accounts
from broker.domain.places import Place
from broker.settings import ConfigurationError, Settings
from tests.places import HOME_REGION
from tests.records import grant_maker
from tests.unit.service.fakes import FakeDatabase

PROD = Place("222222222222", "eu-west-1")


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS region in the environment, nor in a profile."""
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


@pytest.mark.usefixtures("no_region")
def test_the_home_region_may_come_from_the_accounts_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text("home: {regions: [ap-southeast-2]}\n")

    accounts = load_accounts(Settings(accounts_file=path))

    assert accounts.home.regions == ("ap-southeast-2",)


@pytest.mark.usefixtures("no_region")
def test_without_any_region_the_broker_says_where_to_set_one() -> None:
    with pytest.raises(ConfigurationError, match=r"set AWS_DEFAULT_REGION .* home regions"):
        load_accounts(Settings())


def test_accounts_that_leave_out_a_place_with_live_grants_are_refused() -> None:
    database = FakeDatabase()
    with database() as unit:
        unit.grants.add(grant_maker()(place=PROD))
        unit.commit()
    home_only = Accounts.single(HOME_REGION)
    with_prod = Accounts(
        home_only.home,
        (Account("222222222222", "prod", ("eu-west-1",), "arn:aws:iam::222222222222:role/x"),),
    )

    with pytest.raises(ConfigurationError, match=r"\(222222222222/eu-west-1\): keep those"):
        check_served(database, home_only)
    check_served(database, with_prod)
