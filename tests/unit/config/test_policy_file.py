"""BROKER_POLICY_FILE: the issue's format read into the domain's rules; anything else refused."""

from datetime import timedelta
from pathlib import Path

import pytest

from broker.adapters.config.policy_file import load_policy_file
from broker.domain.access import Access
from broker.domain.approval import ApprovalRule
from broker.domain.authorization import AccessPolicy, AccessRequest, Decision, Rule, decide
from broker.domain.grants import GrantScope
from broker.settings import ConfigurationError

REPO = Path(__file__).resolve().parents[3]

EXAMPLE = """\
admins: [platform-admin]            # may do everything, including revoking others' grants
deny_buckets: ["audit-*", "*-logs"] # nobody gets these, admins included
rules:
  - identities: [svc-ci, "team-data-*"]
    buckets: ["ci-*", "data-*"]
    access: [upload, read]
    prefixes: ["builds/*"]          # optional; absent means any prefix
    instance_tags: {team: data}     # optional; the instance must carry these tags
    max_ttl: 24h                    # optional
  - identities: [svc-web]
    buckets: [web-assets]
    access: [read-write, list]
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_the_issues_example_is_read_into_rules(tmp_path: Path) -> None:
    policy = load_policy_file(_file(tmp_path, EXAMPLE))

    assert policy == AccessPolicy(
        admins=frozenset({"platform-admin"}),
        deny_buckets=("audit-*", "*-logs"),
        rules=(
            Rule(
                number=1,
                identities=("svc-ci", "team-data-*"),
                buckets=("ci-*", "data-*"),
                access=frozenset({Access.UPLOAD, Access.READ}),
                prefixes=("builds/*",),
                instance_tags={"team": "data"},
                max_ttl=timedelta(hours=24),
            ),
            Rule(
                number=2,
                identities=("svc-web",),
                buckets=("web-assets",),
                access=frozenset({Access.READ_WRITE, Access.LIST}),
            ),
        ),
    )
    assert policy.reads_instance_tags


@pytest.mark.parametrize("text", ["{}\n", "admins: []\nrules: []\ndeny_buckets: []\n"])
def test_an_empty_policy_is_valid_and_denies_everything(tmp_path: Path, text: str) -> None:
    assert load_policy_file(_file(tmp_path, text)) == AccessPolicy()


RULE = "identities: [a], buckets: [b], access: [read]"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "must be a YAML mapping"),
        ("admin: [a]\n", "unknown key admin"),
        ("admins: a\n", "admins: must be a non-empty list"),
        ("admins: ['a*']\n", "admins: 'a\\*' is a pattern; name each one exactly"),
        ("delegates: ['web-*']\n", "delegates: 'web-\\*' is a pattern; name each one exactly"),
        ("delegates: web\n", "delegates: must be a non-empty list"),
        ("admins: [' a']\n", "must not start or end with white space"),
        ("deny_buckets: [1]\n", "deny_buckets: every entry must be a non-empty string"),
        ("rules: {a: 1}\n", "rules must be a list"),
        ("rules: [a]\n", "rule 1: must be a mapping"),
        ("rules: [{identities: [a], buckets: [b]}]\n", "rule 1: missing access"),
        (f"rules: [{{{RULE}, prefix: [x]}}]\n", "rule 1: unknown key prefix"),
        ("rules: [{identities: [a], buckets: [], access: [read]}]\n", "buckets: must be a non"),
        ("rules: [{identities: a, buckets: [b], access: [read]}]\n", "identities: must be a"),
        ("rules: [{identities: [a], buckets: [b], access: [write]}]\n", "unknown access 'write'"),
        (
            "rules: [{identities: [a], buckets: [b], access: [read_write]}]\n",
            "expected upload, read, read-write, list",
        ),
        (f"rules: [{{{RULE}, prefixes: []}}]\n", "rule 1: prefixes: must be a non-empty list"),
        (f"rules: [{{{RULE}, instance_tags: [team]}}]\n", "instance_tags: must be a mapping"),
        (f"rules: [{{{RULE}, instance_tags: {{tier: 1}}}}]\n", "quote values such as 1"),
        (f"rules: [{{{RULE}, max_ttl: 3600}}]\n", "max_ttl: must be a duration such as 90s"),
        (f"rules: [{{{RULE}, max_ttl: 1 day}}]\n", "max_ttl: invalid duration '1 day'"),
        (f"rules: [{{{RULE}, max_ttl: 40000w}}]\n", "max_ttl: must be at most 36525 days"),
        (f"rules: [{{{RULE}}}, {{{RULE}, max_ttl: 0s}}]\n", "rule 2: max_ttl: invalid duration"),
        (f"rules: [{{{RULE}, approval: [alice]}}]\n", "rule 1: approval: must be a mapping"),
        (f"rules: [{{{RULE}, approval: {{required: 1}}}}]\n", "approval: missing approvers"),
        (f"rules: [{{{RULE}, approval: {{approvers: [a], quorum: 1}}}}]\n", "unknown key quorum"),
        (
            f"rules: [{{{RULE}, approval: {{approvers: [a], required: 0}}}}]\n",
            "approval: required must be a whole number, at least 1",
        ),
        (
            f"rules: [{{{RULE}, approval: {{approvers: [a, a, b], required: 3}}}}]\n",
            "approval: required is 3, but only 2 approvers are named",
        ),
        (
            f"rules: [{{{RULE}, approval: {{approvers: [a], timeout: 1 day}}}}]\n",
            "approval: timeout: invalid duration '1 day'",
        ),
        (f"rules: [{{{RULE}, accounts: prod}}]\n", "rule 1: accounts: must be a non-empty list"),
        (f"rules: [{{{RULE}, accounts: []}}]\n", "rule 1: accounts: must be a non-empty list"),
        # Left empty it is refused, not read as "any account".
        (f"rules: [{{{RULE}, accounts: }}]\n", "rule 1: accounts: must be a non-empty list"),
        (
            f"rules: [{{{RULE}}}, {{{RULE}, accounts: [dev, 'prod-*']}}]\n",
            "rule 2: accounts: 'prod-\\*' is a pattern; name each account exactly, by id or name",
        ),
        (f"rules: [{{{RULE}, accounts: ['dev?']}}]\n", "accounts: 'dev\\?' is a pattern"),
        (f"rules: [{{{RULE}, accounts: ['[dp]ev']}}]\n", "accounts: '\\[dp\\]ev' is a pattern"),
        (
            f"rules: [{{{RULE}, accounts: [222222222222]}}]\n",
            "rule 1: accounts: 222222222222 is a number to YAML; quote the account id",
        ),
        (
            f"rules: [{{{RULE}, accounts: [prod.eu]}}]\n",
            "rule 1: accounts: 'prod.eu' is neither an account id \\(12 digits\\) nor an "
            "account name",
        ),
        (f"rules: [{{{RULE}, accounts: ['12345']}}]\n", "'12345' is neither an account id"),
        (f"rules: [{{{RULE}, accounts: ['']}}]\n", "'' is neither an account id"),
        (f"rules: [{{{RULE}, accounts: [{{a: 1}}]}}]\n", "accounts: must be an account's id"),
    ],
)
def test_malformed_policies_are_refused_saying_where_and_why(
    tmp_path: Path, text: str, complaint: str
) -> None:
    with pytest.raises(ConfigurationError, match=complaint) as refused:
        load_policy_file(_file(tmp_path, text))

    assert str(refused.value).startswith(f"policy file {tmp_path / 'policy.yaml'}")


def test_a_rule_may_ask_for_approval(tmp_path: Path) -> None:
    text = f"""\
rules:
  - {{{RULE}, max_ttl: 8h}}
  - identities: [a]
    buckets: [b]
    access: [read]
    approval:
      approvers: [alice, bob, "sre-*"]
      required: 2
      timeout: 24h
  - {{{RULE}, approval: {{approvers: ["sre-*"]}}}}
"""
    policy = load_policy_file(_file(tmp_path, text))

    assert [rule.approval for rule in policy.rules] == [
        None,
        ApprovalRule(("alice", "bob", "sre-*"), 2, timedelta(hours=24)),
        ApprovalRule(("sre-*",), 1, None),
    ]


def test_a_rule_may_name_the_accounts_its_instances_live_in(tmp_path: Path) -> None:
    text = f"""\
rules:
  - {{{RULE}}}
  - {{{RULE}, accounts: [prod, "222222222222", home]}}
"""
    policy = load_policy_file(_file(tmp_path, text))

    assert [rule.accounts for rule in policy.rules] == [None, ("prod", "222222222222", "home")]


def test_a_rules_accounts_decide_by_the_instances_account(tmp_path: Path) -> None:
    policy = load_policy_file(_file(tmp_path, f"rules: [{{{RULE}, accounts: [dev]}}]\n"))
    scope = GrantScope("b", "", Access.READ)

    def decided(aliases: frozenset[str], name: str) -> Decision:
        asked = AccessRequest("a", scope, {}, None, account=aliases, account_name=name)
        return decide(policy, asked)

    assert decided(frozenset({"333333333333", "dev"}), "dev").allowed
    assert decided(frozenset({"222222222222", "prod"}), "prod") == Decision(
        False, "no rule matched: rule 1: account prod is not one of dev"
    )


def test_delegates_are_read_as_named(tmp_path: Path) -> None:
    policy = load_policy_file(_file(tmp_path, "delegates: [accessbroker-web]\nrules: []\n"))

    assert policy.delegates == frozenset({"accessbroker-web"})


def test_the_sandboxs_policy_shows_both_paths_to_the_web_page() -> None:
    policy = load_policy_file(REPO / "deploy" / "sandbox" / "policy.yaml")

    def decided(access: Access, prefix: str) -> Decision:
        scope = GrantScope("sandbox-data", prefix, access)
        return decide(policy, AccessRequest("sandbox-requester", scope, {}, None))

    at_once, approved = decided(Access.UPLOAD, "reports/"), decided(Access.READ_WRITE, "shared/")
    assert (at_once.allowed, at_once.approval) == (True, None)
    assert approved.allowed and approved.approval == ApprovalRule(("sandbox-approver",))
    # brokerctl and the web page call as `anonymous` in the sandbox (auth mode none).
    assert policy.is_admin("anonymous") and "anonymous" in policy.delegates
