"""BROKER_ACCOUNTS_FILE: accounts and regions read into the domain's terms; anything else refused
saying where and why."""

from pathlib import Path

import pytest

from broker.adapters.config.accounts_file import load_accounts_file
from broker.domain.accounts import Account, Accounts
from broker.domain.places import Place
from broker.settings import ConfigurationError

REGION = "us-east-1"
PROD_ARN = "arn:aws:iam::222222222222:role/accessbroker-spoke"

EXAMPLE = f"""\
home: {{id: "111111111111", name: hub, regions: [us-east-1, us-west-2]}}
accounts:
  - id: "222222222222"
    name: prod
    role_arn: {PROD_ARN}
    external_id: optional-string
    regions: [us-east-1, eu-west-1]
  - id: "333333333333"
    name: gov_1
    role_arn: arn:aws-us-gov:iam::333333333333:role/platform/team/accessbroker-spoke
    regions: [us-gov-west-1]
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    return path


def test_the_example_is_read_with_the_spokes_in_file_order(tmp_path: Path) -> None:
    accounts = load_accounts_file(_file(tmp_path, EXAMPLE), REGION)

    assert accounts == Accounts(
        home=Account("111111111111", "hub", ("us-east-1", "us-west-2")),
        spokes=(
            Account(
                "222222222222",
                "prod",
                ("us-east-1", "eu-west-1"),
                role_arn=PROD_ARN,
                external_id="optional-string",
            ),
            Account(
                "333333333333",
                "gov_1",
                ("us-gov-west-1",),
                role_arn="arn:aws-us-gov:iam::333333333333:role/platform/team/accessbroker-spoke",
            ),
        ),
    )
    assert accounts.home.is_home and not accounts.spokes[0].is_home
    assert accounts.place_for("prod", "") == Place("222222222222", "us-east-1")
    assert accounts.place_for("111111111111", "us-west-2") == Place("", "us-west-2")


@pytest.mark.parametrize("text", ["{}\n", "accounts: []\n"])
def test_without_home_the_broker_serves_its_own_account_in_its_region(
    tmp_path: Path, text: str
) -> None:
    accounts = load_accounts_file(_file(tmp_path, text), "eu-west-1")

    assert accounts == Accounts.single("eu-west-1")
    assert accounts.home == Account(id="", name="home", regions=("eu-west-1",))


@pytest.mark.parametrize(
    ("home", "expected"),
    [
        ("{}", Account("", "home", (REGION,))),
        ('{id: "111111111111"}', Account("111111111111", "home", (REGION,))),
        ("{name: hub}", Account("", "hub", (REGION,))),
        (
            "{regions: [eu-west-1, eu-central-2]}",
            Account("", "home", ("eu-west-1", "eu-central-2")),
        ),
    ],
)
def test_each_of_homes_keys_defaults_on_its_own(
    tmp_path: Path, home: str, expected: Account
) -> None:
    accounts = load_accounts_file(_file(tmp_path, f"home: {home}\n"), REGION)

    assert accounts == Accounts(expected)


SPOKE = f'id: "222222222222", name: prod, role_arn: {PROD_ARN}, regions: [{REGION}]'
OTHER = (
    'id: "333333333333", name: dev, role_arn: arn:aws:iam::333333333333:role/r, '
    f"regions: [{REGION}]"
)


# A path of 512 characters between "role/" and the name: IAM allows 512 with both slashes.
LONG_PATH = "arn:aws:iam::222222222222:role/" + "p/" * 256 + "r"
THIRTEEN = '"0222222222222"'
ALL_DIGITS = "'123'"  # quoted: a string of digits, which would read as an id
ID_4, ARN_4 = '"444444444444"', "arn:aws:iam::444444444444:role/r"


def _spoke(**changes: str) -> str:
    """One spoke as a flow mapping, with some of its keys' YAML replaced (or "" to drop one)."""
    fields = {
        "id": '"222222222222"',
        "name": "prod",
        "role_arn": PROD_ARN,
        "regions": f"[{REGION}]",
        **changes,
    }
    return "{" + ", ".join(f"{k}: {v}" for k, v in fields.items() if v) + "}"


def test_a_spoke_without_an_external_id_has_none(tmp_path: Path) -> None:
    text = f"accounts: [{_spoke()}]\n"

    (spoke,) = load_accounts_file(_file(tmp_path, text), REGION).spokes

    assert spoke == Account("222222222222", "prod", (REGION,), role_arn=PROD_ARN)
    assert spoke.external_id == ""


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        # the file
        ("", "must be a YAML mapping"),
        ("- id: x\n", "must be a YAML mapping"),
        ("spokes: []\n", ": unknown key spokes \\(expected home, accounts\\)"),
        ("accounts: {prod: x}\n", ": accounts must be a list"),
        ("accounts:\n", ": accounts must be a list"),
        # home
        ("home: hub\n", ": home: must be a mapping"),
        ("home:\n", ": home: must be a mapping"),
        (f"home: {{role_arn: {PROD_ARN}}}\n", ": home: unknown key role_arn"),
        ("home: {id: 111111111111}\n", ": home.id: 111111111111 is a number to YAML; quote"),
        ("home: {id: '11111111111'}\n", ": home.id: must be an AWS account id, 12 digits"),
        ("home: {name: ''}\n", ": home.name: must be 1 to 64 letters, digits"),
        ("home: {regions: []}\n", ": home.regions: must be a non-empty list"),
        ("home: {regions: us-east-1}\n", ": home.regions: must be a non-empty list"),
        ("home: {regions: [Moon-1]}\n", ": home.regions: 'Moon-1' is not an AWS region name"),
        # a spoke's shape
        ("accounts: [prod]\n", ": accounts\\[0\\]: must be a mapping"),
        (f"accounts: [{_spoke(id='')}]\n", ": accounts\\[0\\]: missing id"),
        (f"accounts: [{_spoke(name='')}]\n", ": accounts\\[0\\]: missing name"),
        (f"accounts: [{_spoke(role_arn='')}]\n", ": accounts\\[0\\]: missing role_arn"),
        (f"accounts: [{_spoke(regions='')}]\n", ": accounts\\[0\\]: missing regions"),
        (f"accounts: [{_spoke(region='[us-east-1]')}]\n", ": accounts\\[0\\]: unknown key region"),
        (
            f"accounts: [{{{SPOKE}}}, {{{OTHER}, externalid: x}}]\n",
            ": accounts\\[1\\]: unknown key externalid",
        ),
        # id
        (
            f"accounts: [{_spoke(id='222222222222')}]\n",
            ": accounts\\[0\\].id: 222222222222 is a number to YAML; quote the account id",
        ),
        (
            # YAML 1.1 reads a leading 0 as octal: the id as written is gone.
            f"accounts: [{_spoke(id='012345670123')}]\n",
            "accounts\\[0\\].id: 1402433619 is a number to YAML; quote the account id",
        ),
        (f"accounts: [{_spoke(id=THIRTEEN)}]\n", "accounts\\[0\\].id: must be an AWS"),
        (f"accounts: [{_spoke(id='2222-2222-2222')}]\n", "accounts\\[0\\].id: must be an AWS"),
        (f"accounts: [{_spoke(id='true')}]\n", "accounts\\[0\\].id: must be an AWS account id"),
        # name
        (f"accounts: [{_spoke(name='prod.eu')}]\n", "accounts\\[0\\].name: must be 1 to 64"),
        (f"accounts: [{_spoke(name=ALL_DIGITS)}]\n", "accounts\\[0\\].name: must be .* not all"),
        (f"accounts: [{_spoke(name='123')}]\n", "accounts\\[0\\].name: must be 1 to 64"),
        (f"accounts: [{_spoke(name='p' * 65)}]\n", "accounts\\[0\\].name: must be 1 to 64"),
        (f"accounts: [{_spoke(name='home')}]\n", "accounts\\[0\\].name: 'home' names the broker"),
        # role_arn
        (
            f"accounts: [{_spoke(role_arn='arn:aws:iam::222222222222:user/bob')}]\n",
            "accounts\\[0\\].role_arn: must be an IAM role's ARN, "
            "arn:aws:iam::222222222222:role/NAME",
        ),
        (
            f"accounts: [{_spoke(role_arn='arn:aws:iam::222222222222:role/')}]\n",
            "accounts\\[0\\].role_arn: must be an IAM role's ARN",
        ),
        (
            f"accounts: [{_spoke(role_arn='arn:aws:sts::222222222222:role/r')}]\n",
            "accounts\\[0\\].role_arn: must be an IAM role's ARN",
        ),
        (
            f"accounts: [{_spoke(role_arn='accessbroker-spoke')}]\n",
            "accounts\\[0\\].role_arn: must be an IAM role's ARN",
        ),
        (
            f"accounts: [{_spoke(role_arn='arn:aws:iam::222222222222:role/a b')}]\n",
            "accounts\\[0\\].role_arn: must be an IAM role's ARN",
        ),
        (
            f"accounts: [{_spoke(role_arn='arn:aws:iam::222222222222:role/' + 'r' * 65)}]\n",
            "accounts\\[0\\].role_arn: must be an IAM role's ARN",
        ),
        (
            f"accounts: [{_spoke(role_arn=LONG_PATH)}]\n",
            "accounts\\[0\\].role_arn: must be an IAM role's ARN",
        ),
        (
            f"accounts: [{_spoke(role_arn='arn:aws:iam::333333333333:role/r')}]\n",
            "accounts\\[0\\].role_arn: the role is in account 333333333333, "
            "not in this account \\(222222222222\\)",
        ),
        # external_id
        (f"accounts: [{_spoke(external_id='x')}]\n", "accounts\\[0\\].external_id: must be 2"),
        (f"accounts: [{_spoke(external_id='a b')}]\n", "accounts\\[0\\].external_id: must be 2"),
        (f"accounts: [{_spoke(external_id='x' * 1225)}]\n", "accounts\\[0\\].external_id: must"),
        (f"accounts: [{_spoke(external_id='12345')}]\n", "accounts\\[0\\].external_id: must be"),
        # regions
        (f"accounts: [{_spoke(regions='[]')}]\n", "accounts\\[0\\].regions: must be a non-empty"),
        (f"accounts: [{_spoke(regions='[1]')}]\n", "accounts\\[0\\].regions: every entry must"),
        (
            f"accounts: [{_spoke(regions='[us-east]')}]\n",
            "accounts\\[0\\].regions: 'us-east' is not an AWS region name \\(such as us-east-1\\)",
        ),
        (
            f"accounts: [{_spoke(regions='[US-EAST-1]')}]\n",
            "accounts\\[0\\].regions: 'US-EAST-1' is not an AWS region name",
        ),
        (
            f"accounts: [{_spoke(regions='[us-east-1, eu-west-1, us-east-1]')}]\n",
            "accounts\\[0\\].regions: us-east-1 is listed twice",
        ),
        # one account per id and per name
        (
            f"accounts: [{{{SPOKE}}}, {{{OTHER}}}, {_spoke(name='staging')}]\n",
            ": accounts\\[2\\].id: 222222222222 already names accounts\\[0\\]",
        ),
        (
            f"accounts: [{{{OTHER}}}, {{{SPOKE}}}, {_spoke(id=ID_4, role_arn=ARN_4)}]\n",
            ": accounts\\[2\\].name: prod already names accounts\\[1\\]",
        ),
        (
            f'home: {{id: "222222222222"}}\naccounts: [{{{SPOKE}}}]\n',
            ": accounts\\[0\\].id: 222222222222 already names the home account",
        ),
        (
            f"home: {{name: prod}}\naccounts: [{{{SPOKE}}}]\n",
            ": accounts\\[0\\].name: prod already names the home account",
        ),
    ],
)
def test_malformed_files_are_refused_saying_where_and_why(
    tmp_path: Path, text: str, complaint: str
) -> None:
    with pytest.raises(ConfigurationError, match=complaint) as refused:
        load_accounts_file(_file(tmp_path, text), REGION)

    assert str(refused.value).startswith(f"accounts file {tmp_path / 'accounts.yaml'}")


def test_an_external_id_is_never_quoted_in_a_refusal(tmp_path: Path) -> None:
    secret = "not allowed!"
    text = f"accounts: [{_spoke(external_id=repr(secret))}]\n"

    with pytest.raises(ConfigurationError, match="external_id") as refused:
        load_accounts_file(_file(tmp_path, text), REGION)

    assert secret not in str(refused.value)


def test_an_unreadable_file_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    with pytest.raises(ConfigurationError, match=f"accounts file {missing}: cannot read it"):
        load_accounts_file(missing, REGION)


@pytest.mark.parametrize(
    "region",
    [
        "us-east-1",
        "eu-central-2",
        "ap-southeast-2",
        "us-gov-west-1",
        "cn-north-1",
        "us-isob-east-1",
    ],
)
def test_aws_region_names_are_accepted(tmp_path: Path, region: str) -> None:
    text = f"home: {{regions: [{region}]}}\n"

    assert load_accounts_file(_file(tmp_path, text), REGION).home.regions == (region,)


def test_a_role_path_may_be_as_long_as_iam_allows(tmp_path: Path) -> None:
    longest = "arn:aws:iam::222222222222:role/" + "p/" * 255 + "r"
    text = f"accounts: [{_spoke(role_arn=longest)}]\n"

    assert load_accounts_file(_file(tmp_path, text), REGION).spokes[0].role_arn == longest
