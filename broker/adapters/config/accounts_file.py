"""BROKER_ACCOUNTS_FILE: the AWS accounts and regions the broker serves, YAML, read into
broker.domain.accounts' terms.

```yaml
home:                               # optional: the account of the broker's own credentials
  id: "111111111111"                # optional; each of id, name and regions is
  name: hub                         # optional (default: home)
  regions: [us-east-1, us-west-2]   # optional (default: the broker's AWS region)
accounts:                           # optional; the spokes, reached by assuming their role
  - id: "222222222222"              # 12 digits, quoted: YAML reads 222222222222 as a number
    name: prod                      # letters, digits, - and _, at most 64, not all digits
    role_arn: arn:aws:iam::222222222222:role/accessbroker-spoke   # a role in that account
    external_id: optional-string    # optional; sent when assuming the role
    regions: [us-east-1, eu-west-1] # the first is where requests naming no region go
```
A request or a policy rule names an account by its id or its name, so every id and name names
exactly one account: none repeats, across the home account and the spokes; "home" names only
the home account. Anything else in the file (an unknown key, an unquoted id, a role in another
account) is refused: a typo must not send the broker to the wrong account.
"""

import re
from pathlib import Path

from broker.adapters.config.yaml_file import check_keys, mapping, read_yaml_mapping
from broker.domain.accounts import HOME_NAME, Account, Accounts
from broker.settings import ConfigurationError

WHAT = "accounts file"
_HOME_KEYS = ("id", "name", "regions")
_SPOKE_KEYS = ("id", "name", "role_arn", "external_id", "regions")

ACCOUNT_ID = re.compile(r"[0-9]{12}")
# A name a request or a rule may use for an account: never all digits, so never an id.
ACCOUNT_NAME = re.compile(r"(?![0-9]*\Z)[A-Za-z0-9_-]{1,64}")
# us-east-1, eu-central-2, ap-southeast-2, us-gov-west-1, cn-north-1, us-isob-east-1.
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
# arn:<partition>:iam::<account>:role/<path/><name>; the path and name as IAM allows them.
_ROLE_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:iam::(?P<account>[0-9]{12}):role/"
    r"(?P<path>(?:[!-~]+/)?)(?P<name>[\w+=,.@-]{1,64})",
    re.ASCII,
)
_MAX_ROLE_PATH = 510  # IAM's 512, less the path's leading and trailing "/"
# AWS's rule for sts:ExternalId.
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)

_NAME_RULE = "1 to 64 letters, digits, '-' or '_', not all digits (such as prod)"


def load_accounts_file(path: Path, home_region: str) -> Accounts:
    """The file's accounts, spokes in file order; `home_region` is the home account's region
    when the file gives none. Raises ConfigurationError naming the first problem and where."""
    data = read_yaml_mapping(path, WHAT)
    where = f"{WHAT} {path}"
    check_keys(data, where, allowed=("home", "accounts"))
    home = _home(data["home"], home_region, f"{where}: home") if "home" in data else None
    if home is None:
        home = Account(id="", name=HOME_NAME, regions=(home_region,))
    entries = data.get("accounts", [])
    if not isinstance(entries, list):
        raise ConfigurationError(f"{where}: accounts must be a list")
    spokes = tuple(_spoke(entry, f"{where}: accounts[{n}]") for n, entry in enumerate(entries))
    _refuse_shared_aliases(home, spokes, where)
    return Accounts(home, spokes)


def account_reference_problem(value: object) -> str | None:
    """What is wrong with `value` as a reference to an account (its id or its name), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _unquoted_id(value)
    if not isinstance(value, str):
        return "must be an account's id (12 digits, quoted) or its name"
    if ACCOUNT_ID.fullmatch(value) or ACCOUNT_NAME.fullmatch(value):
        return None
    return f"{value!r} is neither an account id (12 digits) nor an account name ({_NAME_RULE})"


def _home(value: object, home_region: str, where: str) -> Account:
    entry = mapping(value, where)
    check_keys(entry, where, allowed=_HOME_KEYS)
    return Account(
        id=_id(entry["id"], f"{where}.id") if "id" in entry else "",
        name=_name(entry["name"], f"{where}.name") if "name" in entry else HOME_NAME,
        regions=(
            _regions(entry["regions"], f"{where}.regions") if "regions" in entry else (home_region,)
        ),
    )


def _spoke(value: object, where: str) -> Account:
    entry = mapping(value, where)
    check_keys(entry, where, allowed=_SPOKE_KEYS, required=("id", "name", "role_arn", "regions"))
    account_id = _id(entry["id"], f"{where}.id")
    name = _name(entry["name"], f"{where}.name")
    if name == HOME_NAME:
        raise ConfigurationError(
            f"{where}.name: {HOME_NAME!r} names the broker's own account; choose another name"
        )
    return Account(
        id=account_id,
        name=name,
        regions=_regions(entry["regions"], f"{where}.regions"),
        role_arn=_role_arn(entry["role_arn"], account_id, f"{where}.role_arn"),
        external_id=(
            _external_id(entry["external_id"], f"{where}.external_id")
            if "external_id" in entry
            else ""
        ),
    )


def _id(value: object, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ConfigurationError(f"{where}: {_unquoted_id(value)}")
    if not isinstance(value, str) or not ACCOUNT_ID.fullmatch(value):
        raise ConfigurationError(f"{where}: must be an AWS account id, 12 digits")
    return value


def _unquoted_id(value: int) -> str:
    # YAML reads 012345670123 as an octal number: the digits as written are lost, so an
    # unquoted id is refused rather than turned back into a string.
    return f'{value} is a number to YAML; quote the account id ("123456789012")'


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not ACCOUNT_NAME.fullmatch(value):
        raise ConfigurationError(f"{where}: must be {_NAME_RULE}")
    return value


def _regions(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigurationError(f"{where}: must be a non-empty list")
    for region in value:
        if not isinstance(region, str):
            raise ConfigurationError(f"{where}: every entry must be a region name (a string)")
        if not _REGION.fullmatch(region):
            raise ConfigurationError(
                f"{where}: {region!r} is not an AWS region name (such as us-east-1)"
            )
    repeated = sorted({r for r in value if value.count(r) > 1})
    if repeated:
        raise ConfigurationError(f"{where}: {', '.join(repeated)} is listed twice")
    return tuple(value)


def _role_arn(value: object, account_id: str, where: str) -> str:
    shape = f"must be an IAM role's ARN, arn:aws:iam::{account_id}:role/NAME"
    if not isinstance(value, str):
        raise ConfigurationError(f"{where}: {shape}")
    arn = _ROLE_ARN.fullmatch(value)
    if arn is None or len(arn["path"]) > _MAX_ROLE_PATH:
        raise ConfigurationError(f"{where}: {shape}")
    if arn["account"] != account_id:
        raise ConfigurationError(
            f"{where}: the role is in account {arn['account']}, not in this account ({account_id})"
        )
    return value


def _external_id(value: object, where: str) -> str:
    # Not quoted in the message: it is shared with the spoke account's owner only.
    if not isinstance(value, str) or not _EXTERNAL_ID.fullmatch(value):
        raise ConfigurationError(
            f"{where}: must be 2 to 1224 letters, digits or characters of _+=,.@:/-"
        )
    return value


def _refuse_shared_aliases(home: Account, spokes: tuple[Account, ...], where: str) -> None:
    """Every id and name must name one account: a request or a rule naming it must not be able
    to mean two."""
    owners: dict[str, str] = {}
    labelled = [("home", home), *((f"accounts[{n}]", a) for n, a in enumerate(spokes))]
    for label, account in labelled:
        for field, alias in (("id", account.id), ("name", account.name)):
            if not alias:
                continue
            if alias in owners:
                raise ConfigurationError(
                    f"{where}: {label}.{field}: {alias} already names {owners[alias]}"
                )
            owners[alias] = "the home account" if label == "home" else label
