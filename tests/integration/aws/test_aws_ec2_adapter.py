"""BotoEc2 against the emulator over HTTP, and its propagation retry against stubbed answers."""

import uuid
from collections.abc import Iterator

import pytest
from botocore.stub import Stubber
from mypy_boto3_ec2.client import EC2Client

from broker.adapters.aws import BotoEc2, BotoIam
from broker.domain.convergence import AssociationInfo, ProfileInfo
from broker.domain.errors import AwsRejected, AwsUnavailable, InstanceNotFound
from broker.domain.naming import DEFAULT_ROLE_PATH, MANAGED_BY_TAG
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Emulator
from broker.service.ports import InstanceInfo
from tests.integration.aws.clients import admin_clients

MANAGED_TAGS = {MANAGED_BY_TAG[0]: MANAGED_BY_TAG[1]}
INSTANCE_ID = "i-0123456789abcdef0"
PROFILE_NAME = "accessbroker-i-0123456789abcdef0"
PROFILE_ARN = f"arn:aws:iam::123456789012:instance-profile/accessbroker/{PROFILE_NAME}"


def make_ec2(emulator: Emulator, propagation_timeout: float) -> BotoEc2:
    return BotoEc2(admin_clients(emulator).ec2, propagation_timeout=propagation_timeout)


@pytest.fixture(scope="module")
def ec2(emulator: Emulator) -> BotoEc2:
    return make_ec2(emulator, propagation_timeout=5.0)


@pytest.fixture(scope="module")
def iam(emulator: Emulator) -> BotoIam:
    return BotoIam(admin_clients(emulator).iam, propagation_timeout=5.0)


def new_profile(iam: BotoIam) -> ProfileInfo:
    """A managed profile holding a managed role of the same name."""
    name = f"accessbroker-test-{uuid.uuid4().hex[:12]}"
    iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, MANAGED_TAGS)
    iam.create_instance_profile(name, DEFAULT_ROLE_PATH, MANAGED_TAGS)
    iam.add_role_to_instance_profile(name, name)
    profile = iam.get_instance_profile(name)
    assert profile is not None
    return profile


def test_running_instance_is_found_with_its_tags(ec2: BotoEc2, emulator: Emulator) -> None:
    instance_id = emulator.run_instance()
    emulator.client("ec2").create_tags(
        Resources=[instance_id], Tags=[{"Key": "team", "Value": "data"}]
    )

    assert ec2.find_instance(instance_id) == InstanceInfo(instance_id, {"team": "data"})


@pytest.mark.parametrize("instance_id", ["i-0123456789abcdef0", "i-bogus"])
def test_unknown_instance_does_not_exist(ec2: BotoEc2, instance_id: str) -> None:
    assert ec2.find_instance(instance_id) is None


def test_terminated_instance_does_not_exist(ec2: BotoEc2, emulator: Emulator) -> None:
    instance_id = emulator.run_instance()
    emulator.client("ec2").terminate_instances(InstanceIds=[instance_id])

    assert ec2.find_instance(instance_id) is None


def test_instance_without_a_profile_has_no_association(ec2: BotoEc2, emulator: Emulator) -> None:
    assert ec2.get_association(emulator.run_instance()) is None


def test_association_lifecycle(ec2: BotoEc2, iam: BotoIam, emulator: Emulator) -> None:
    instance_id = emulator.run_instance()
    profile = new_profile(iam)

    associated = ec2.associate(instance_id, profile.name)

    assert associated.instance_id == instance_id
    assert associated.profile_arn == profile.arn
    assert ec2.get_association(instance_id) == associated

    ec2.disassociate(associated.association_id)
    assert ec2.get_association(instance_id) is None
    ec2.disassociate(associated.association_id)


def test_associating_the_same_profile_again_returns_the_existing_association(
    ec2: BotoEc2, iam: BotoIam, emulator: Emulator
) -> None:
    instance_id = emulator.run_instance()
    profile = new_profile(iam)
    first = ec2.associate(instance_id, profile.name)

    assert ec2.associate(instance_id, profile.name) == first


def test_associating_while_another_profile_is_associated_is_rejected(
    ec2: BotoEc2, iam: BotoIam, emulator: Emulator
) -> None:
    instance_id = emulator.run_instance()
    ec2.associate(instance_id, new_profile(iam).name)

    with pytest.raises(AwsRejected, match="AssociateIamInstanceProfile failed: IncorrectState"):
        ec2.associate(instance_id, new_profile(iam).name)


def test_associating_with_an_unknown_instance_is_not_found(ec2: BotoEc2, iam: BotoIam) -> None:
    with pytest.raises(InstanceNotFound):
        ec2.associate("i-0123456789abcdef0", new_profile(iam).name)


def test_associating_a_profile_that_never_appears_is_unavailable(
    emulator: Emulator,
) -> None:
    ec2 = make_ec2(emulator, propagation_timeout=0.3)

    with pytest.raises(AwsUnavailable, match="did not propagate"):
        ec2.associate(emulator.run_instance(), "accessbroker-never-created")


# EC2's propagation errors cannot be produced by moto, so these stub a real client's answers.


@pytest.fixture(scope="module")
def client_to_stub(emulator: Emulator) -> EC2Client:
    # Built once: loading EC2's service model takes a second or two per client.
    return admin_clients(emulator).ec2


@pytest.fixture
def stubbed(client_to_stub: EC2Client) -> Iterator[Stubber]:
    with Stubber(client_to_stub) as stubber:
        yield stubber


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
    stubbed: Stubber, client_to_stub: EC2Client, message: str
) -> None:
    stub_not_yet_visible(stubbed, message)
    stub_not_yet_visible(stubbed, message)
    stubbed.add_response(
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
    ec2 = BotoEc2(client_to_stub, propagation_timeout=10.0)

    assert ec2.associate(INSTANCE_ID, PROFILE_NAME) == AssociationInfo(
        "iip-assoc-0123456789abcdef0", INSTANCE_ID, PROFILE_ARN
    )
    stubbed.assert_no_pending_responses()


def test_associate_gives_up_when_the_budget_is_spent(
    stubbed: Stubber, client_to_stub: EC2Client
) -> None:
    for _ in range(50):
        stub_not_yet_visible(stubbed, PROPAGATION_MESSAGES[0])
    attempts = count_calls(stubbed, "AssociateIamInstanceProfile")
    ec2 = BotoEc2(client_to_stub, propagation_timeout=0.5)

    with pytest.raises(AwsUnavailable, match=f"instance profile {PROFILE_NAME} to EC2 within"):
        ec2.associate(INSTANCE_ID, PROFILE_NAME)
    assert 2 <= len(attempts) < 50


def test_associate_does_not_retry_other_errors(stubbed: Stubber, client_to_stub: EC2Client) -> None:
    stubbed.add_client_error(
        "associate_iam_instance_profile",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation.",
        http_status_code=403,
    )
    stub_not_yet_visible(stubbed, PROPAGATION_MESSAGES[0])
    attempts = count_calls(stubbed, "AssociateIamInstanceProfile")
    ec2 = BotoEc2(client_to_stub, propagation_timeout=10.0)

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


def test_the_instances_holding_a_profile_are_found_across_the_region(
    ec2: BotoEc2, iam: BotoIam, emulator: Emulator
) -> None:
    profile = new_profile(iam)
    first, second, bystander = (emulator.run_instance() for _ in range(3))
    ec2.associate(first, profile.name)
    ec2.associate(second, profile.name)

    assert ec2.instances_holding(profile.arn) == {first, second}
    assert bystander not in ec2.instances_holding(profile.arn)
    assert ec2.instances_holding(profile.arn + "-nobody") == set()
