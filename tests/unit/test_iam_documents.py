"""deploy/iam's documents: each a well-formed IAM policy; the spoke role's permissions the
broker's own, in the spoke's account; its trust only the broker's role with the external id; and
the StackSet template exactly the JSON files it deploys, so that none of them drifts from another.

The e2e test (tests/e2e/test_broker_policy.py) proves broker-policy.json is enough; these prove
the multi-account documents grant that and nothing more or less.
"""

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import lint  # type: ignore[import-untyped]

from broker.domain.boundary import BOUNDARY_ACTIONS, boundary_document
from broker.domain.naming import ADOPTABLE_TAG

IAM = Path(__file__).resolve().parents[2] / "deploy" / "iam"
BROKER = "broker-policy.json"
ADOPTION = "broker-adoption-policy.json"
SPOKE_PERMISSIONS = "spoke-permissions-policy.json"
HUB_ASSUME_SPOKES = "hub-assume-spokes-policy.json"
SPOKE_TRUST = "spoke-trust-policy.json"
STACKSET = "spoke-stackset.yaml"
BOUNDARY = "boundary-policy.json"
IDENTITY_POLICIES = (BROKER, ADOPTION, SPOKE_PERMISSIONS, HUB_ASSUME_SPOKES, BOUNDARY)
TRUST_POLICIES = (SPOKE_TRUST,)

# The JSON files' placeholders, and the template parameters (or pseudo parameter) they become.
HUB_ROLE = "arn:aws:iam::HUB_ACCOUNT_ID:role/accessbroker"
EXTERNAL_ID = "EXTERNAL_ID"
SPOKE_ACCOUNT = "SPOKE_ACCOUNT_ID"
GRANTABLE_BUCKETS = "GRANTABLE_BUCKETS"
PARAMETERS = {
    "HubRoleArn": HUB_ROLE,
    "ExternalId": EXTERNAL_ID,
    "AWS::AccountId": SPOKE_ACCOUNT,
    "GrantableBuckets": GRANTABLE_BUCKETS,
}
SPOKE_ROLE_NAME = "accessbroker-spoke"

ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9*]+")
SID = re.compile(r"[A-Za-z0-9]+")


def document(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((IAM / name).read_text())
    return loaded


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def actions(policy: dict[str, Any]) -> set[str]:
    return {a for s in policy["Statement"] for a in as_list(s["Action"])}


def arn_account(arn: str) -> str:
    return arn.split(":")[4]


def in_any_account(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement with the account of every ARN it names replaced by "*"."""

    def widened(arn: str) -> str:
        if arn == "*":
            return arn
        fields = arn.split(":", 5)
        fields[4] = "*"
        return ":".join(fields)

    resource = statement["Resource"]
    return {
        **statement,
        "Resource": widened(resource)
        if isinstance(resource, str)
        else list(map(widened, resource)),
    }


def _check_statement_shape(
    statement: dict[str, Any], required: set[str], allowed: set[str]
) -> None:
    assert required <= statement.keys() <= allowed, statement
    assert SID.fullmatch(statement.get("Sid", "Sid")), statement
    assert statement["Effect"] in ("Allow", "Deny"), statement
    assert as_list(statement["Action"]), statement
    for action in as_list(statement["Action"]):
        assert ACTION.fullmatch(action), action
    for operator, keys in statement.get("Condition", {}).items():
        assert isinstance(operator, str) and isinstance(keys, dict) and keys, statement


def _check_policy_shape(policy: dict[str, Any], required: set[str], allowed: set[str]) -> None:
    assert policy.keys() == {"Version", "Statement"}, policy.keys()
    assert policy["Version"] == "2012-10-17"
    assert isinstance(policy["Statement"], list) and policy["Statement"]
    for statement in policy["Statement"]:
        _check_statement_shape(statement, required, allowed)
    sids = [s["Sid"] for s in policy["Statement"] if "Sid" in s]
    assert len(sids) == len(set(sids)), sids


def test_every_json_document_here_is_checked() -> None:
    """A new file cannot slip past the shape checks below."""
    assert {p.name for p in IAM.glob("*.json")} == {*IDENTITY_POLICIES, *TRUST_POLICIES}


@pytest.mark.parametrize("name", IDENTITY_POLICIES)
def test_each_permissions_policy_has_the_shape_iam_accepts(name: str) -> None:
    policy = document(name)

    _check_policy_shape(
        policy,
        {"Effect", "Action", "Resource"},
        {"Sid", "Effect", "Action", "Resource", "Condition"},
    )
    for statement in policy["Statement"]:
        for resource in as_list(statement["Resource"]):
            assert resource == "*" or len(resource.split(":", 5)) == 6, resource
            assert resource == "*" or resource.startswith("arn:aws:"), resource


@pytest.mark.parametrize("name", TRUST_POLICIES)
def test_each_trust_policy_has_the_shape_iam_accepts(name: str) -> None:
    _check_policy_shape(
        document(name),
        {"Effect", "Principal", "Action"},
        {"Sid", "Effect", "Principal", "Action", "Condition"},
    )


def test_the_spoke_trusts_only_the_brokers_role_and_only_with_the_external_id() -> None:
    [statement] = document(SPOKE_TRUST)["Statement"]

    assert statement["Effect"] == "Allow"
    # The role itself, not its account: any principal of the hub account could assume it then.
    assert statement["Principal"] == {"AWS": HUB_ROLE}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}


def test_a_spoke_allows_the_broker_what_its_home_account_does() -> None:
    home, spoke = document(BROKER), document(SPOKE_PERMISSIONS)

    assert actions(spoke) == actions(home)
    # The quota is read in every account served, the home one included.
    assert "iam:GetAccountSummary" in actions(home)


def test_a_spokes_statements_differ_from_the_homes_only_by_the_account() -> None:
    home, spoke = document(BROKER)["Statement"], document(SPOKE_PERMISSIONS)["Statement"]

    assert [s["Sid"] for s in spoke] == [s["Sid"] for s in home]
    for ours, theirs in zip(spoke, home, strict=True):
        arns = [r for r in as_list(ours["Resource"]) if r != "*"]
        assert {arn_account(arn) for arn in arns} <= {SPOKE_ACCOUNT}, ours
        assert in_any_account(ours) == theirs


def test_the_broker_cannot_change_the_spoke_role_it_acts_through() -> None:
    """Were the spoke role on the broker's path, the broker could rewrite its own permissions, or
    pass the role to an instance of its choosing."""
    spoke_role = f"arn:aws:iam::{SPOKE_ACCOUNT}:role/{SPOKE_ROLE_NAME}"
    for statement in _allowing(document(SPOKE_PERMISSIONS)):
        writes = [
            a
            for a in as_list(statement["Action"])
            if not a.split(":")[1].startswith(("Get", "List", "Describe"))
        ]
        for resource in as_list(statement["Resource"]) if writes else []:
            assert not fnmatch.fnmatchcase(spoke_role, resource), (writes, resource)


def test_adoption_writes_only_on_roles_tagged_adoptable() -> None:
    """The adoption add-on may read any role, and change inline policies only on the roles the
    platform team tagged: IAM cannot scope those writes by the policy's name."""
    for statement in document(ADOPTION)["Statement"]:
        writes = [a for a in as_list(statement["Action"]) if not _reads(a)]
        if writes:
            assert statement["Condition"] == {
                "StringEquals": {f"iam:ResourceTag/{ADOPTABLE_TAG[0]}": ADOPTABLE_TAG[1]}
            }, writes
    written = {a for s in document(ADOPTION)["Statement"] for a in as_list(s["Action"])}
    assert {a for a in written if not _reads(a)} == {"iam:PutRolePolicy", "iam:DeleteRolePolicy"}


def _reads(action: str) -> bool:
    return action.split(":")[1].startswith(("Get", "List", "Describe"))


def _allowing(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if s["Effect"] == "Allow"]


BOUNDED_WRITES = {
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:PutRolePermissionsBoundary",
}
# The account's own, on the root path, exactly: a wildcard would also match a policy of that
# name on a path such as /x:policy/.
WITH_THE_BOUNDARY = {
    "iam:PermissionsBoundary": "arn:aws:iam::${aws:PrincipalAccount}:policy/accessbroker-boundary"
}
BOUNDARY_CHANGES = {
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:DeletePolicy",
}


@pytest.mark.parametrize("name", [BROKER, SPOKE_PERMISSIONS])
def test_roles_are_created_and_written_only_with_the_boundary(name: str) -> None:
    """What widens a role needs the boundary on it; nothing takes a boundary off. The Deny
    statements hold even against another policy the broker's identity might be given."""
    policy = document(name)
    for statement in _allowing(policy):
        if set(as_list(statement["Action"])) & BOUNDED_WRITES:
            assert statement["Condition"] == {"StringEquals": WITH_THE_BOUNDARY}, statement
    allowed = {a for s in _allowing(policy) for a in as_list(s["Action"])}
    assert "iam:DeleteRolePermissionsBoundary" not in allowed
    assert "iam:AttachRolePolicy" not in allowed  # the broker writes inline policies only
    denials = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    denied_unless_bounded = {
        a
        for s in denials
        if s.get("Condition") == {"StringNotEquals": WITH_THE_BOUNDARY}
        for a in as_list(s["Action"])
    }
    assert denied_unless_bounded == BOUNDED_WRITES
    assert any(
        s["Action"] == "iam:DeleteRolePermissionsBoundary" and "Condition" not in s for s in denials
    )
    # Nor is the boundary itself widened or deleted, whatever else the identity may hold.
    [guard] = [s for s in denials if set(as_list(s["Action"])) == BOUNDARY_CHANGES]
    assert arn_account(guard["Resource"]) in ("*", SPOKE_ACCOUNT)
    assert guard["Resource"].endswith(":policy/accessbroker-boundary") and "Condition" not in guard


def test_the_shipped_boundary_is_the_brokers_own_with_a_placeholder_for_the_buckets() -> None:
    assert document(BOUNDARY) == boundary_document(["GRANTABLE_BUCKETS"])


def test_the_boundary_allows_exactly_the_s3_actions_of_the_four_access_levels() -> None:
    """Held to the broker's own policy shapes: an access level that gains an action must gain
    it here too, or its grants would be cut by the boundary."""
    assert actions(document(BOUNDARY)) == BOUNDARY_ACTIONS
    assert all(s["Effect"] == "Allow" for s in document(BOUNDARY)["Statement"])
    assert all(a.startswith("s3:") and "*" not in a for a in actions(document(BOUNDARY)))


def test_the_hub_may_assume_the_spoke_role_and_nothing_else() -> None:
    [statement] = document(HUB_ASSUME_SPOKES)["Statement"]

    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Resource"] == f"arn:aws:iam::*:role/{SPOKE_ROLE_NAME}"
    # STS is in that file alone: a broker serving one account does not need it.
    assert not [a for a in actions(document(BROKER)) if a.startswith("sts:")]


@dataclass(frozen=True)
class Tagged:
    """A CloudFormation short-form function (!Ref, !Sub, !GetAtt...) and its argument."""

    tag: str
    value: Any


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that keeps "!" tags as Tagged instead of refusing them."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tagged:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return Tagged(suffix, value)


CloudFormationLoader.add_multi_constructor("!", _tagged)


def resolved(node: Any) -> Any:
    """`node` with !Ref and !Sub replaced by what PARAMETERS stand for; any other function, or a
    name PARAMETERS lacks, fails (KeyError) rather than passing through."""
    if isinstance(node, dict):
        return {key: resolved(value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(item) for item in node]
    if isinstance(node, Tagged):
        if node.tag == "Ref":
            return PARAMETERS[node.value]
        if node.tag == "Sub" and isinstance(node.value, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: PARAMETERS[m.group(1)], node.value)
        raise KeyError(f"!{node.tag} {node.value!r}")
    return node


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load((IAM / STACKSET).read_text(), Loader=CloudFormationLoader)
    return loaded


def role_of(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The template's one role: its logical id and properties."""
    return _one_of("AWS::IAM::Role", template)


def _one_of(kind: str, template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = [
        (name, resource)
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    ]
    properties: dict[str, Any] = resource["Properties"]
    return logical_id, properties


def test_the_template_holds_the_role_and_the_accounts_boundary(template: dict[str, Any]) -> None:
    assert sorted(r["Type"] for r in template["Resources"].values()) == [
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Role",
    ]
    _, boundary = _one_of("AWS::IAM::ManagedPolicy", template)

    assert boundary["ManagedPolicyName"] == "accessbroker-boundary"
    assert resolved(boundary["PolicyDocument"]) == document(BOUNDARY)


def test_the_templates_role_trusts_what_the_trust_policy_says(template: dict[str, Any]) -> None:
    _, role = role_of(template)

    assert resolved(role["AssumeRolePolicyDocument"]) == document(SPOKE_TRUST)


def test_the_templates_role_allows_what_the_spoke_permissions_say(
    template: dict[str, Any],
) -> None:
    _, role = role_of(template)

    [inline] = role["Policies"]
    assert resolved(inline["PolicyDocument"]) == document(SPOKE_PERMISSIONS)
    assert "ManagedPolicyArns" not in role and "PermissionsBoundary" not in role


def test_the_templates_parameters_and_output(template: dict[str, Any]) -> None:
    logical_id, role = role_of(template)
    parameters = template["Parameters"]

    assert set(parameters) == {"HubRoleArn", "ExternalId", "RoleName", "GrantableBuckets"}
    assert "Default" not in parameters["HubRoleArn"] and "Default" not in parameters["ExternalId"]
    assert parameters["ExternalId"]["NoEcho"] is True
    # The name hub-assume-spokes-policy.json lets the broker assume.
    assert parameters["RoleName"]["Default"] == SPOKE_ROLE_NAME
    assert role["RoleName"] == Tagged("Ref", "RoleName")
    assert role.get("Path", "/") == "/"
    assert template["Outputs"]["RoleArn"]["Value"] == Tagged("GetAtt", f"{logical_id}.Arn")


def test_cfn_lint_finds_nothing_wrong_with_the_template() -> None:
    findings = lint((IAM / STACKSET).read_text())

    assert [str(finding) for finding in findings] == []
