"""AwsCalls, the one way the adapters call AWS: action names, missing, maybe-done and paging.

Answers are stubbed on real clients (botocore.stub.Stubber), so no request leaves the process;
retries wait on a fake clock.
"""

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore import xform_name
from botocore.stub import Stubber
from mypy_boto3_ec2.client import EC2Client
from mypy_boto3_iam.client import IAMClient

import broker.adapters.aws.ec2
import broker.adapters.aws.iam
from broker.adapters.aws import AwsClients, make_aws_clients
from broker.adapters.aws.calls import AwsCalls, MaybeDone, Paging
from broker.adapters.aws.ec2 import BotoEc2
from broker.adapters.aws.iam import BotoIam
from broker.adapters.aws.retry import AwsRetry, Fault, RetryCounter
from broker.domain.errors import AwsRejected
from broker.sandbox import Credentials
from tests.integration.aws.clock import FakeClock

ROLE = "accessbroker-i-0123456789abcdef0"


def actions_named_in(module_file: str) -> set[str]:
    """The actions an adapter module calls: the first argument of every .call / .paginate."""
    tree = ast.parse(Path(module_file).read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"call", "paginate"}
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


IAM_ACTIONS = actions_named_in(broker.adapters.aws.iam.__file__)
EC2_ACTIONS = actions_named_in(broker.adapters.aws.ec2.__file__)


@pytest.fixture(scope="module")
def clients() -> AwsClients:
    # Never contacted: every answer below is stubbed.
    return make_aws_clients(
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        credentials=Credentials("AKIAEXAMPLEEXAMPLE00", "secret"),
    )


def test_the_adapters_call_these_actions() -> None:
    assert sorted(IAM_ACTIONS) == [
        "AddRoleToInstanceProfile",
        "CreateInstanceProfile",
        "CreateRole",
        "DeleteInstanceProfile",
        "DeleteRole",
        "DeleteRolePolicy",
        "DetachRolePolicy",
        "GetAccountAuthorizationDetails",
        "GetAccountSummary",
        "GetInstanceProfile",
        "GetPolicy",
        "GetPolicyVersion",
        "GetRole",
        "GetRolePolicy",
        "ListAttachedRolePolicies",
        "ListInstanceProfiles",
        "ListInstanceProfilesForRole",
        "ListRolePolicies",
        "ListRoleTags",
        "ListRoles",
        "PutRolePermissionsBoundary",
        "PutRolePolicy",
        "RemoveRoleFromInstanceProfile",
        "UpdateAssumeRolePolicy",
    ]
    assert sorted(EC2_ACTIONS) == [
        "AssociateIamInstanceProfile",
        "DescribeIamInstanceProfileAssociations",
        "DescribeInstances",
        "DisassociateIamInstanceProfile",
    ]


@pytest.mark.parametrize(
    ("service", "action"),
    [("iam", a) for a in sorted(IAM_ACTIONS)] + [("ec2", a) for a in sorted(EC2_ACTIONS)],
)
def test_every_action_named_is_the_client_method_of_that_name(
    clients: AwsClients, service: str, action: str
) -> None:
    client = clients.iam if service == "iam" else clients.ec2
    method = xform_name(action)

    assert callable(getattr(client, method))
    assert client.meta.method_to_api_mapping[method] == action


@pytest.fixture
def iam_stub(clients: AwsClients) -> Iterator[Stubber]:
    with Stubber(clients.iam) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def ec2_stub(clients: AwsClients) -> Iterator[Stubber]:
    with Stubber(clients.ec2) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def calls_on(
    client: IAMClient | EC2Client, counter: RetryCounter, adapter: type[BotoIam | BotoEc2]
) -> AwsCalls:
    clock = FakeClock()
    retry = AwsRetry(counter=counter, sleep=clock.sleep, clock=clock)
    return AwsCalls(client, retry, missing=adapter.MISSING, paging=adapter.PAGING)


@pytest.fixture
def iam(clients: AwsClients, counter: RetryCounter) -> AwsCalls:
    return calls_on(clients.iam, counter, BotoIam)


@pytest.fixture
def ec2(clients: AwsClients, counter: RetryCounter) -> AwsCalls:
    return calls_on(clients.ec2, counter, BotoEc2)


def refuse(stubber: Stubber, method: str, code: str, status: int = 400) -> None:
    stubber.add_client_error(method, service_error_code=code, http_status_code=status)


def test_missing_is_none_only_where_the_call_says_so(iam: AwsCalls, iam_stub: Stubber) -> None:
    refuse(iam_stub, "get_role", "NoSuchEntity", 404)
    refuse(iam_stub, "get_role", "NoSuchEntity", 404)

    assert iam.call("GetRole", RoleName=ROLE, none_if_missing=True) is None
    with pytest.raises(AwsRejected, match="AWS GetRole failed: NoSuchEntity"):
        iam.call("GetRole", RoleName=ROLE)


def test_ec2s_not_found_codes_are_its_missing(ec2: AwsCalls, ec2_stub: Stubber) -> None:
    for code in sorted(BotoEc2.MISSING):
        refuse(ec2_stub, "disassociate_iam_instance_profile", code)
        answer = ec2.call("DisassociateIamInstanceProfile", AssociationId="x", none_if_missing=True)
        assert answer is None, code


def test_a_maybe_done_code_is_left_to_the_call_site(iam: AwsCalls, iam_stub: Stubber) -> None:
    refuse(iam_stub, "create_role", "EntityAlreadyExists", 409)
    refuse(iam_stub, "create_role", "MalformedPolicyDocument")
    params: dict[str, Any] = {"RoleName": ROLE, "AssumeRolePolicyDocument": "{}"}

    with pytest.raises(MaybeDone) as raised:
        iam.call("CreateRole", **params, maybe_done={"EntityAlreadyExists"})
    assert raised.value.code == "EntityAlreadyExists"
    assert str(raised.value.refusal()) == (
        "AWS CreateRole failed: EntityAlreadyExists; the broker's log has AWS's message"
    )
    with pytest.raises(AwsRejected, match="AWS CreateRole failed: MalformedPolicyDocument"):
        iam.call("CreateRole", **params, maybe_done={"EntityAlreadyExists"})


def test_iam_listings_follow_the_marker_and_retry_a_page_alone(
    iam: AwsCalls, iam_stub: Stubber, counter: RetryCounter
) -> None:
    first = {"RoleName": ROLE}
    then = {"RoleName": ROLE, "Marker": "m1"}
    page = {"PolicyNames": ["a", "b"], "IsTruncated": True, "Marker": "m1"}
    iam_stub.add_response("list_role_policies", page, first)
    refuse(iam_stub, "list_role_policies", "Throttling")
    iam_stub.add_response("list_role_policies", {"PolicyNames": ["c"], "IsTruncated": False}, then)

    assert iam.paginate("ListRolePolicies", "PolicyNames", RoleName=ROLE) == ["a", "b", "c"]
    assert counter.retries() == {("ListRolePolicies", Fault.THROTTLING): 1}


def test_a_listing_of_something_missing_is_empty_where_the_call_says_so(
    iam: AwsCalls, iam_stub: Stubber
) -> None:
    page = {"PolicyNames": ["a"], "IsTruncated": True, "Marker": "m1"}
    iam_stub.add_response("list_role_policies", page)
    refuse(iam_stub, "list_role_policies", "NoSuchEntity", 404)

    assert (
        iam.paginate("ListRolePolicies", "PolicyNames", RoleName=ROLE, empty_if_missing=True) == []
    )


def test_ec2_listings_follow_the_next_token(ec2: AwsCalls, ec2_stub: Stubber) -> None:
    method, key = "describe_iam_instance_profile_associations", "IamInstanceProfileAssociations"
    ec2_stub.add_response(method, {key: [{"InstanceId": "i-1"}], "NextToken": "t1"}, {})
    ec2_stub.add_response(method, {key: [{"InstanceId": "i-2"}]}, {"NextToken": "t1"})

    found = ec2.paginate("DescribeIamInstanceProfileAssociations", key)

    assert [a["InstanceId"] for a in found] == ["i-1", "i-2"]


@pytest.mark.parametrize(
    ("paging", "page", "after"),
    [
        (BotoIam.PAGING, {"IsTruncated": True, "Marker": "m"}, {"Marker": "m"}),
        (BotoIam.PAGING, {"IsTruncated": False, "Marker": "m"}, {}),
        (BotoIam.PAGING, {}, {}),
        (BotoEc2.PAGING, {"NextToken": "t"}, {"NextToken": "t"}),
        (BotoEc2.PAGING, {"NextToken": ""}, {}),
        (BotoEc2.PAGING, {}, {}),
    ],
)
def test_where_a_listing_continues(
    paging: Paging, page: dict[str, object], after: dict[str, str]
) -> None:
    assert paging.after(page) == after
