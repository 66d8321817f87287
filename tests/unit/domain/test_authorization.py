"""The access policy's decision: every rule dimension allowed and refused, deny first, globs."""

from dataclasses import replace
from datetime import timedelta
from fnmatch import fnmatchcase

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.access import Access
from broker.domain.accounts import Account
from broker.domain.authorization import (
    UNRESTRICTED,
    AccessPolicy,
    AccessRequest,
    Decision,
    Rule,
    decide,
    identity_problems,
)
from broker.domain.grants import GrantScope

HOUR = timedelta(hours=1)
# The example rule.
CI_RULE = Rule(
    number=1,
    identities=("svc-ci", "team-data-*"),
    buckets=("ci-*", "data-*"),
    access=frozenset({Access.UPLOAD, Access.READ}),
    prefixes=("builds/*",),
    instance_tags={"team": "data"},
    max_ttl=24 * HOUR,
)
POLICY = AccessPolicy(
    admins=frozenset({"platform-admin"}), deny_buckets=("audit-*", "*-logs"), rules=(CI_RULE,)
)
TAGS = {"team": "data", "env": "prod"}
HOME = Account("111111111111", "hub", ("us-east-1",))
PROD = Account("222222222222", "prod", ("us-east-1",), "arn:aws:iam::222222222222:role/spoke")
DEV = Account("333333333333", "dev", ("us-east-1",), "arn:aws:iam::333333333333:role/spoke")


def request(
    identity: str = "svc-ci",
    bucket: str = "ci-artifacts",
    access: Access = Access.UPLOAD,
    prefix: str = "builds/42/",
    *,
    tags: dict[str, str] | None = None,
    ttl: timedelta | None = HOUR,
    default_ttl: timedelta | None = None,
    account: Account = PROD,
) -> AccessRequest:
    return AccessRequest(
        identity=identity,
        scope=GrantScope(bucket, prefix, access),
        tags=TAGS if tags is None else tags,
        ttl=ttl,
        default_ttl=default_ttl,
        account=account.aliases,
        account_name=account.name,
    )


def test_a_request_matching_every_dimension_of_a_rule_is_allowed_by_it() -> None:
    assert decide(POLICY, request()) == Decision(True, "allowed by rule 1", 1, HOUR)


@pytest.mark.parametrize(
    ("asked", "reason"),
    [
        (request(identity="svc-other"), "no rule matched: no rule is for identity svc-other"),
        (
            request(bucket="web-assets"),
            "no rule matched: rule 1: bucket web-assets is not one of ci-*, data-*",
        ),
        (
            request(access=Access.READ_WRITE),
            "no rule matched: rule 1: access read-write is not one of read, upload",
        ),
        (
            request(prefix="releases/"),
            "no rule matched: rule 1: prefix 'releases/' is not one of builds/*",
        ),
        (
            request(tags={"team": "web"}),
            "no rule matched: rule 1: the instance does not carry the tags team=data",
        ),
        (request(ttl=25 * HOUR), "ttl 1d1h is over the rule's max of 1d (rule 1)"),
        (request(bucket="audit-2025"), "bucket audit-2025 is denied by 'audit-*'"),
    ],
)
def test_each_dimension_refuses_naming_why(asked: AccessRequest, reason: str) -> None:
    assert decide(POLICY, asked) == Decision(False, reason)


@pytest.mark.parametrize(
    "asked",
    [
        request(identity="team-data-etl"),
        request(bucket="data-lake"),
        request(access=Access.READ),
        request(prefix="builds/"),
        request(tags={"team": "data"}),
        request(ttl=24 * HOUR),
    ],
)
def test_each_dimension_allows_what_the_rule_names(asked: AccessRequest) -> None:
    assert decide(POLICY, asked).allowed


@pytest.mark.parametrize(
    ("bucket", "pattern"),
    [("audit-trail", "audit-*"), ("app-logs", "*-logs"), ("audit-logs", "audit-*")],
)
def test_denied_buckets_are_refused_even_to_admins(bucket: str, pattern: str) -> None:
    decision = decide(POLICY, request(identity="platform-admin", bucket=bucket))

    assert decision == Decision(False, f"bucket {bucket} is denied by {pattern!r}")


def test_a_deny_wins_over_a_rule_that_names_the_bucket() -> None:
    rule = Rule(1, ("svc-ci",), ("*",), frozenset(Access))
    policy = AccessPolicy(deny_buckets=("secret-*",), rules=(rule,))

    assert decide(policy, request(bucket="ci-x")).allowed
    assert not decide(policy, request(bucket="secret-x")).allowed


def test_admins_may_have_anything_not_denied_for_as_long_as_the_server_allows() -> None:
    asked = request("platform-admin", "anything", Access.READ_WRITE, "", tags={}, ttl=None)

    assert decide(POLICY, replace(asked, default_ttl=8 * HOUR)) == Decision(
        True, "platform-admin is an admin", 0, 8 * HOUR
    )
    assert decide(POLICY, asked).ttl is None


def test_an_unrestricted_policy_allows_everything_but_names_it() -> None:
    decision = decide(UNRESTRICTED, request("anonymous", "x-bucket", ttl=None))

    assert decision.allowed
    assert decision.reason == "no access policy is configured: anyone may do anything"
    assert UNRESTRICTED.is_admin("anonymous")


def test_a_policy_without_rules_refuses_everyone_but_its_admins() -> None:
    policy = AccessPolicy(admins=frozenset({"root"}))

    assert not decide(policy, request("svc-ci")).allowed
    assert decide(policy, request("root")).allowed


# --- ttl: what a grant without one gets, and which rule allows it


@pytest.mark.parametrize(
    ("default_ttl", "granted"),
    [
        (None, 24 * HOUR),  # no expiry is not within a max: the grant gets the max
        (8 * HOUR, 8 * HOUR),  # the server's default, when within the max
        (48 * HOUR, 24 * HOUR),  # cut to the max
    ],
)
def test_without_a_ttl_the_grant_gets_the_default_cut_to_the_rules_max(
    default_ttl: timedelta | None, granted: timedelta
) -> None:
    decision = decide(POLICY, request(ttl=None, default_ttl=default_ttl))

    assert decision == Decision(True, "allowed by rule 1", 1, granted)


def test_a_rule_without_a_max_leaves_the_servers_default() -> None:
    rule = Rule(1, ("svc-ci",), ("*",), frozenset(Access))
    policy = AccessPolicy(rules=(rule,))

    assert decide(policy, request(ttl=None)).ttl is None
    assert decide(policy, request(ttl=None, default_ttl=HOUR)).ttl == HOUR
    assert decide(policy, request(ttl=1000 * HOUR)).ttl == 1000 * HOUR


def test_of_several_matching_rules_the_first_to_admit_the_ttl_allows_it() -> None:
    short = Rule(1, ("svc-ci",), ("ci-*",), frozenset(Access), max_ttl=HOUR)
    long = Rule(2, ("svc-*",), ("*",), frozenset(Access), max_ttl=48 * HOUR)
    policy = AccessPolicy(rules=(short, long))

    assert decide(policy, request(ttl=HOUR)).rule == 1
    assert decide(policy, request(ttl=2 * HOUR)).rule == 2
    assert decide(policy, request(ttl=49 * HOUR)) == Decision(
        False, "ttl 2d1h is over the rule's max of 2d (rule 2)"
    )


def test_without_a_ttl_the_rule_allowing_longest_is_used() -> None:
    short = Rule(1, ("svc-ci",), ("*",), frozenset(Access), max_ttl=HOUR)
    long = Rule(2, ("svc-ci",), ("*",), frozenset(Access), max_ttl=48 * HOUR)
    unbounded = Rule(3, ("svc-ci",), ("*",), frozenset(Access))

    assert decide(AccessPolicy(rules=(short, long)), request(ttl=None)).rule == 2
    assert decide(AccessPolicy(rules=(short, long, unbounded)), request(ttl=None)).rule == 3


def test_refusals_explain_every_rule_of_the_identity_and_only_those() -> None:
    mine = Rule(1, ("svc-ci",), ("ci-*",), frozenset({Access.READ}))
    someone_elses = Rule(2, ("svc-web",), ("web-*",), frozenset(Access))
    also_mine = Rule(3, ("svc-*",), ("*",), frozenset({Access.LIST}), prefixes=("logs/*",))
    policy = AccessPolicy(rules=(mine, someone_elses, also_mine))

    decision = decide(policy, request(access=Access.UPLOAD))

    assert decision.reason == (
        "no rule matched: rule 1: access upload is not one of read; "
        "rule 3: access upload is not one of list"
    )


# --- globs


@pytest.mark.parametrize(
    ("prefix", "patterns", "allowed"),
    [
        ("", None, True),  # no prefixes: any prefix, the whole bucket included
        ("", ("*",), True),  # "*" matches "": the whole bucket
        ("", ("builds/*",), False),  # a whole-bucket grant needs "*" or no prefixes at all
        ("builds/", ("builds/*",), True),
        ("builds/a/b/", ("builds/*",), True),  # "*" matches "/" too
        ("builds", ("builds/*",), False),
        ("Builds/", ("builds/*",), False),  # case matters, as in S3 keys
        ("reports/2025-01/", ("reports/2025-0?/",), True),
        ("reports/2025-11/", ("reports/2025-0?/",), False),
        ("team-b/", ("team-[ab]/",), True),
        ("team-c/", ("team-[ab]/",), False),
    ],
)
def test_prefix_globs(prefix: str, patterns: tuple[str, ...] | None, allowed: bool) -> None:
    rule = Rule(1, ("svc-ci",), ("*",), frozenset(Access), prefixes=patterns)

    assert decide(AccessPolicy(rules=(rule,)), request(prefix=prefix)).allowed is allowed


@pytest.mark.parametrize(
    ("identity", "allowed"),
    [
        ("team-data-etl", True),
        ("team-data-", True),
        ("TEAM-DATA-etl", False),
        ("team-datax", False),
        ("spiffe://example.org/ns/data/sa/etl", True),
        ("spiffe://example.org/ns/web/sa/etl", False),
    ],
)
def test_identity_globs(identity: str, allowed: bool) -> None:
    rule = Rule(1, ("team-data-*", "spiffe://example.org/ns/data/*"), ("*",), frozenset(Access))

    assert decide(AccessPolicy(rules=(rule,)), request(identity)).allowed is allowed


# --- accounts


@pytest.mark.parametrize(
    ("accounts", "instance_in", "allowed"),
    [
        (None, PROD, True),  # no accounts: any configured account
        (None, HOME, True),
        (("prod",), PROD, True),  # by name
        (("222222222222",), PROD, True),  # by id
        (("dev", "prod"), PROD, True),
        (("hub",), HOME, True),
        (("111111111111",), HOME, True),
        (("dev",), PROD, False),
        (("333333333333",), PROD, False),
        (("222222222222",), DEV, False),
        (("prod",), HOME, False),
        (("prod-*",), PROD, False),  # named exactly: no globs
        (("Prod",), PROD, False),
    ],
)
def test_a_rules_accounts_name_the_account_the_instance_lives_in(
    accounts: tuple[str, ...] | None, instance_in: Account, allowed: bool
) -> None:
    rule = Rule(1, ("svc-ci",), ("*",), frozenset(Access), accounts=accounts)

    asked = request(account=instance_in)

    assert decide(AccessPolicy(rules=(rule,)), asked).allowed is allowed


def test_an_account_refusal_names_the_instances_account_and_the_rules() -> None:
    rule = replace(CI_RULE, accounts=("dev", "staging"))

    decision = decide(AccessPolicy(rules=(rule,)), request(account=PROD))

    assert decision == Decision(
        False, "no rule matched: rule 1: account prod is not one of dev, staging"
    )


def test_the_home_account_without_an_id_is_named_by_its_name() -> None:
    home = Account("", "home", ("us-east-1",))
    rule = Rule(1, ("svc-ci",), ("*",), frozenset(Access), accounts=("home",))
    policy = AccessPolicy(rules=(rule,))

    assert decide(policy, request(account=home)).allowed
    assert decide(policy, request(account=PROD)).reason.endswith("account prod is not one of home")


def test_a_request_not_saying_its_account_is_refused_by_a_rule_naming_accounts() -> None:
    rule = Rule(1, ("svc-ci",), ("*",), frozenset(Access), accounts=("prod",))
    unplaced = replace(request(), account=frozenset(), account_name="")
    by_id = replace(request(), account_name="")

    assert decide(AccessPolicy(rules=(rule,)), unplaced).reason == (
        "no rule matched: rule 1: account (unknown) is not one of prod"
    )
    assert decide(AccessPolicy(rules=(replace(rule, accounts=("dev",)),)), by_id).reason == (
        "no rule matched: rule 1: account 222222222222, prod is not one of dev"
    )
    assert decide(AccessPolicy(rules=(replace(rule, accounts=None),)), unplaced).allowed


def test_of_several_rules_the_one_for_the_instances_account_allows_it() -> None:
    in_dev = Rule(1, ("svc-ci",), ("*",), frozenset(Access), max_ttl=HOUR, accounts=("dev",))
    in_prod = Rule(2, ("svc-ci",), ("*",), frozenset({Access.READ}), accounts=("prod",))
    policy = AccessPolicy(rules=(in_dev, in_prod))

    assert decide(policy, request(access=Access.READ, account=PROD)).rule == 2
    assert decide(policy, request(access=Access.UPLOAD, account=DEV)).rule == 1
    assert decide(policy, request(access=Access.UPLOAD, account=PROD)).reason == (
        "no rule matched: rule 1: account prod is not one of dev; "
        "rule 2: access upload is not one of read"
    )


def test_the_instance_must_carry_every_tag_of_the_rule_with_its_value() -> None:
    rule = Rule(1, ("svc-ci",), ("*",), frozenset(Access), instance_tags={"a": "1", "b": "2"})
    policy = AccessPolicy(rules=(rule,))

    assert decide(policy, request(tags={"a": "1", "b": "2", "c": "3"})).allowed
    assert decide(policy, request(tags={"a": "1"})).reason.endswith("carry the tags b=2")
    assert decide(policy, request(tags={"a": "1", "b": "3"})).reason.endswith("tags b=2")
    assert decide(policy, request(tags={})).reason.endswith("carry the tags a=1, b=2")


# --- properties

BUCKETS = st.from_regex(r"[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]", fullmatch=True)
PATTERNS = st.lists(st.sampled_from(["*", "audit-*", "*-logs", "a*", "*.b", "x?y*"]), max_size=3)


@given(bucket=BUCKETS, denied=PATTERNS, admin=st.booleans())
def test_a_matching_deny_always_refuses(bucket: str, denied: list[str], admin: bool) -> None:
    rule = Rule(1, ("*",), ("*",), frozenset(Access))
    policy = AccessPolicy(admins=frozenset({"root"}), deny_buckets=tuple(denied), rules=(rule,))

    decision = decide(policy, request("root" if admin else "svc", bucket))

    assert decision.allowed is not any(fnmatchcase(bucket, p) for p in denied)


@given(
    asked=st.none() | st.integers(1, 100).map(lambda h: h * HOUR),
    default=st.none() | st.integers(1, 100).map(lambda h: h * HOUR),
    maximum=st.integers(1, 100).map(lambda h: h * HOUR),
)
def test_an_allowed_grant_never_outlasts_its_rules_max(
    asked: timedelta | None, default: timedelta | None, maximum: timedelta
) -> None:
    rule = Rule(1, ("svc-ci",), ("*",), frozenset(Access), max_ttl=maximum)

    decision = decide(AccessPolicy(rules=(rule,)), request(ttl=asked, default_ttl=default))

    assert decision.allowed is (asked is None or asked <= maximum)
    if decision.allowed:
        assert decision.ttl is not None
        assert decision.ttl <= maximum
        assert decision.ttl == (asked or min(default or maximum, maximum))


# --- ownership and names


def test_a_grant_is_acted_on_by_its_requester_or_an_admin() -> None:
    assert POLICY.may_act_on("svc-ci", "svc-ci")
    assert POLICY.may_act_on("platform-admin", "svc-ci")
    assert not POLICY.may_act_on("svc-other", "svc-ci")


@pytest.mark.parametrize(
    ("identity", "problems"),
    [
        ("svc-ci", []),
        ("spiffe://example.org/ns/ci/sa/builder", []),
        ("", ["must not be empty"]),
        ("  ", ["must not be empty"]),
        (" svc", ["must not start or end with white space"]),
        ("svc\x00", ["must not contain control characters"]),
        ("x" * 257, ["must be at most 256 characters"]),
    ],
)
def test_identity_problems(identity: str, problems: list[str]) -> None:
    assert identity_problems(identity) == problems
