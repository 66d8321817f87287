"""A policy rule may name only accounts the accounts file configures: a typo must not quietly
refuse what the rule allows."""

from pathlib import Path

import pytest

from broker.bootstrap import load_access_policy
from broker.domain.accounts import Account, Accounts
from broker.settings import ConfigurationError, Settings

ACCOUNTS = Accounts(
    Account(id="111111111111", name="hub", regions=("us-east-1",)),
    (
        Account(
            id="222222222222",
            name="prod",
            regions=("us-east-1",),
            role_arn="arn:aws:iam::222222222222:role/accessbroker-spoke",
        ),
    ),
)


def policy_naming(tmp_path: Path, *accounts: str) -> Settings:
    path = tmp_path / "policy.yaml"
    names = ", ".join(f'"{a}"' for a in accounts)
    path.write_text(
        f"rules:\n  - identities: [ci]\n    buckets: [b]\n    access: [read]\n"
        f"    accounts: [{names}]\n"
    )
    return Settings(policy_file=path, authentication="token")


def test_rules_naming_configured_accounts_by_name_or_id_are_read(tmp_path: Path) -> None:
    policy = load_access_policy(policy_naming(tmp_path, "prod", "111111111111"), ACCOUNTS)

    assert policy.rules[0].accounts == ("prod", "111111111111")


def test_a_rule_naming_an_account_not_configured_is_refused(tmp_path: Path) -> None:
    settings = policy_naming(tmp_path, "prod", "staging", "333333333333")

    with pytest.raises(ConfigurationError) as refused:
        load_access_policy(settings, ACCOUNTS)

    assert str(refused.value) == (
        f"policy file {settings.policy_file}: rules name accounts that are not configured "
        "(BROKER_ACCOUNTS_FILE): 333333333333, staging"
    )
