"""BotoEc2's propagation retry against stubbed answers of a real client.

The Ec2 port's behaviour against the emulator is its contract (tests/contract).
"""

import pytest
from botocore.stub import Stubber
from mypy_boto3_ec2.client import EC2Client

from broker.adapters.aws import BotoEc2
from broker.domain.convergence import AssociationInfo
from broker.domain.errors import AwsRejected, AwsUnavailable

INSTANCE_ID = "i-0123456789abcdef0"
PROFILE_NAME = "accessbroker-i-0123456789abcdef0"
PROFILE_ARN = f"arn:aws:iam::123456789012:instance-profile/accessbroker/{PROFILE_NAME}"

# EC2's propagation errors cannot be produced by moto, so these stub a real client's answers.


PROPAGATION_MESSAGES = [
    f"Value ({PROFILE_NAME}) for parameter iamInstanceProfile.name is invalid. "
    "Invalid IAM Instance Profile name",
    f"Value ({PROFILE_ARN}) for parameter iamInstanceProfile.arn is invalid. "
    "Invalid IAM Instance Profile ARN",
    f"IAM Instance Profile {PROFILE_ARN} has no associated IAM Roles",
]
ASSOCIATE_PARAMS = {"InstanceId": INSTANCE_ID, "IamInstanceProfile": {"Name": PROFILE_NAME}}


def stub_not_yet_visible(stubber: Stubber, message: str) -> None:
    stubber.add_client_error(
        "associate_iam_instance_profile",
        service_error_code="InvalidParameterValue",
        service_message=message,
        http_status_code=400,
        expected_params=ASSOCIATE_PARAMS,
    )


@pytest.mark.parametrize("message", PROPAGATION_MESSAGES)
def test_associate_waits_until_ec2_sees_the_profile(
    ec2_stub: Stubber, ec2_client: EC2Client, message: str
) -> None:
    stub_not_yet_visible(ec2_stub, message)
    stub_not_yet_visible(ec2_stub, message)
    ec2_stub.add_response(
        "associate_iam_instance_profile",
        {
            "IamInstanceProfileAssociation": {
                "AssociationId": "iip-assoc-0123456789abcdef0",
                "InstanceId": INSTANCE_ID,
                "IamInstanceProfile": {"Arn": PROFILE_ARN, "Id": "AIPAEXAMPLE"},
                "State": "associating",
            }
        },
        ASSOCIATE_PARAMS,
    )
    ec2 = BotoEc2(ec2_client, propagation_timeout=10.0)

    assert ec2.associate(INSTANCE_ID, PROFILE_NAME) == AssociationInfo(
        "iip-assoc-0123456789abcdef0", INSTANCE_ID, PROFILE_ARN
    )
    ec2_stub.assert_no_pending_responses()


def test_associate_gives_up_when_the_budget_is_spent(
    ec2_stub: Stubber, ec2_client: EC2Client
) -> None:
    for _ in range(50):
        stub_not_yet_visible(ec2_stub, PROPAGATION_MESSAGES[0])
    attempts = count_calls(ec2_stub, "AssociateIamInstanceProfile")
    ec2 = BotoEc2(ec2_client, propagation_timeout=0.5)

    with pytest.raises(AwsUnavailable, match=f"instance profile {PROFILE_NAME} to EC2 within"):
        ec2.associate(INSTANCE_ID, PROFILE_NAME)
    assert 2 <= len(attempts) < 50


def test_associate_does_not_retry_other_errors(ec2_stub: Stubber, ec2_client: EC2Client) -> None:
    ec2_stub.add_client_error(
        "associate_iam_instance_profile",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation.",
        http_status_code=403,
    )
    stub_not_yet_visible(ec2_stub, PROPAGATION_MESSAGES[0])
    attempts = count_calls(ec2_stub, "AssociateIamInstanceProfile")
    ec2 = BotoEc2(ec2_client, propagation_timeout=10.0)

    with pytest.raises(AwsRejected, match="AssociateIamInstanceProfile failed: Unauthorized") as e:
        ec2.associate(INSTANCE_ID, PROFILE_NAME)
    assert len(attempts) == 1
    assert "not authorized" not in str(e.value), "AWS's own message belongs in the log only"


def count_calls(stubber: Stubber, operation: str) -> list[object]:
    """A list that grows by one with every call of the operation on the stubbed client."""
    calls: list[object] = []
    stubber.client.meta.events.register(
        f"before-parameter-build.ec2.{operation}", lambda **_: calls.append(operation)
    )
    return calls
