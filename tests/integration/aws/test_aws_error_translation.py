"""How botocore failures become AwsUnavailable or AwsRejected, over HTTP and as raised."""

import time
import uuid

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from broker.adapters.aws import BotoEc2, BotoIam, make_aws_clients
from broker.adapters.aws.errors import BotoFailure, translate
from broker.adapters.aws.retry import RetryBudgets
from broker.domain.errors import AwsQuotaExceeded, AwsRejected, AwsUnavailable
from broker.domain.naming import DEFAULT_ROLE_PATH
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Credentials, Emulator
from tests.integration.aws.clients import admin_clients, closed_port

SECRET = "do-not-leak-this-secret-key"
# Transient failures are retried for this long in these tests: briefly, but retried.
SHORT = RetryBudgets(throttling=0.5, server_error=0.5, connection=0.5)


def client_error(code: str, status: int, message: str = "details") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {},
                "RequestId": "",
                "HostId": "",
                "RetryAttempts": 0,
            },
        },
        "GetRole",
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("Throttling", 400), AwsUnavailable),
        (client_error("RequestLimitExceeded", 503), AwsUnavailable),
        (client_error("InternalFailure", 500), AwsUnavailable),
        (client_error("ServiceUnavailable", 503), AwsUnavailable),
        (ReadTimeoutError(endpoint_url="https://iam.amazonaws.com/"), AwsUnavailable),
        (ConnectionClosedError(endpoint_url="https://iam.amazonaws.com/"), AwsUnavailable),
        (client_error("AccessDenied", 403), AwsRejected),
        (client_error("ValidationError", 400), AwsRejected),
        (ResponseParserError("invalid XML received"), AwsUnavailable),
        (NoCredentialsError(), AwsRejected),
    ],
)
def test_translation_kind(error: BotoFailure, expected: type[Exception]) -> None:
    assert type(translate("GetRole", error)) is expected


def test_unavailable_names_the_action_and_the_code() -> None:
    message = str(translate("GetRole", client_error("Throttling", 400, "Rate exceeded")))

    assert "GetRole" in message
    assert "Throttling" in message


def test_rejected_names_the_action_and_the_code_but_keeps_awss_message_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    aws_message = "User: arn:aws:iam::111122223333:user/broker is not authorized"

    message = str(translate("GetRole", client_error("AccessDenied", 403, aws_message)))

    assert message == "AWS GetRole failed: AccessDenied; the broker's log has AWS's message"
    assert aws_message in caplog.text


def test_limit_exceeded_is_a_quota_error() -> None:
    error = translate("CreateRole", client_error("LimitExceeded", 409, "Cannot exceed quota"))

    assert isinstance(error, AwsQuotaExceeded)
    assert "CreateRole failed: LimitExceeded" in str(error)


@pytest.fixture(scope="module")
def powerless(emulator: Emulator) -> Credentials:
    """The key of an IAM user without any policy."""
    iam = emulator.client("iam")
    user_name = f"powerless-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user_name)
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def test_user_without_permissions_is_rejected(emulator: Emulator, powerless: Credentials) -> None:
    clients = make_aws_clients(
        endpoint_url=emulator.endpoint_url, region=emulator.region, credentials=powerless
    )
    iam = BotoIam(clients.iam, propagation_timeout=1.0)

    with pytest.raises(AwsRejected, match="GetRole failed: AccessDenied") as raised:
        iam.get_role("accessbroker-i-0123456789abcdef0")
    assert powerless.secret_access_key not in str(raised.value)


def test_unreadable_server_error_is_unavailable(emulator: Emulator) -> None:
    # moto answers an HTML HTTP 500 page when asked to remove a role the profile does not hold.
    clients = make_aws_clients(
        endpoint_url=emulator.endpoint_url,
        region=emulator.region,
        credentials=emulator.admin_credentials,
    )
    iam = BotoIam(clients.iam, propagation_timeout=1.0, budgets=SHORT)
    name = f"accessbroker-test-{uuid.uuid4().hex[:12]}"
    iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, {})
    iam.create_instance_profile(name, DEFAULT_ROLE_PATH, {})

    with pytest.raises(
        AwsUnavailable, match="RemoveRoleFromInstanceProfile failed: ResponseParserError"
    ):
        iam.remove_role_from_instance_profile(name, name)


def test_unreachable_endpoint_is_unavailable_quickly() -> None:
    clients = make_aws_clients(
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        region="us-east-1",
        credentials=Credentials("AKIAEXAMPLEEXAMPLE00", SECRET),
        connect_timeout=1.0,
    )
    started = time.monotonic()

    with pytest.raises(AwsUnavailable, match="GetRole failed: EndpointConnectionError") as iam_err:
        BotoIam(clients.iam, propagation_timeout=1.0, budgets=SHORT).get_role("accessbroker-x")
    with pytest.raises(AwsUnavailable, match="DescribeInstances failed") as ec2_err:
        BotoEc2(clients.ec2, propagation_timeout=1.0, budgets=SHORT).find_instance(
            "i-0123456789abcdef0"
        )

    assert time.monotonic() - started < 5.0
    assert SECRET not in str(iam_err.value) + str(ec2_err.value)


def test_clients_leave_retrying_to_the_adapters_budgets_by_default(emulator: Emulator) -> None:
    clients = admin_clients(emulator)

    for client in (clients.iam, clients.ec2):
        # botocore-stubs do not declare Config's options as attributes.
        retries = getattr(client.meta.config, "retries")  # noqa: B009
        assert retries == {"mode": "standard", "total_max_attempts": 1}
