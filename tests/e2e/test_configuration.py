"""Configuration reaching the running server: the role path, and AWS being out of reach."""

from pathlib import Path

import grpc

from accessbroker.v1 import broker_pb2 as pb
from broker.sandbox import Emulator
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import aws_policy, grant
from tests.ports import free_port
from tests.rpc import refusal


def test_role_path_setting_places_roles_and_profiles(
    emulator: Emulator, tmp_path: Path, buckets: tuple[str, str]
) -> None:
    instance_id = emulator.run_instance()
    process = BrokerProcess(
        emulator, f"sqlite:///{tmp_path / 'b.db'}", BROKER_ROLE_PATH="/platform/grants/"
    )
    process.start()
    try:
        granted = grant(process.stub, instance_id, buckets[0]).grant
    finally:
        process.stop()

    assert granted.role_arn.endswith(f":role/platform/grants/accessbroker-{instance_id}")
    assert granted.instance_profile_arn.endswith(
        f":instance-profile/platform/grants/accessbroker-{instance_id}"
    )
    role = emulator.client("iam").get_role(RoleName=f"accessbroker-{instance_id}")["Role"]
    assert role["Path"] == "/platform/grants/"


def test_bound_credentials_put_the_binding_on_every_statement_in_aws(
    emulator: Emulator, tmp_path: Path, buckets: tuple[str, str]
) -> None:
    """The emulator cannot evaluate ec2:RoleDelivery or aws:SourceVpc (its requests carry
    neither): what AWS holds is checked, and that the instance's own upload still goes through
    where the keys are absent."""
    instance_id = emulator.run_instance()
    process = BrokerProcess(
        emulator,
        f"sqlite:///{tmp_path / 'b.db'}",
        BROKER_REQUIRE_IMDSV2="true",
        BROKER_BIND_CREDENTIALS="vpc",
    )
    process.start()
    try:
        grant(process.stub, instance_id, buckets[0], prefix="up/")
    finally:
        process.stop()

    held = aws_policy(emulator, instance_id)
    for statement in held["Statement"]:
        assert statement["Condition"]["NumericGreaterThanEquals"] == {"ec2:RoleDelivery": "2.0"}
        assert statement["Condition"]["StringEquals"] == {
            "aws:SourceVpc": "${aws:ec2InstanceSourceVPC}"
        }
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "up/a") == "allowed"


def test_unreachable_aws_is_unavailable_and_records_nothing(
    emulator: Emulator, tmp_path: Path
) -> None:
    closed = free_port()  # nobody listens there
    process = BrokerProcess(
        emulator,
        f"sqlite:///{tmp_path / 'b.db'}",
        BROKER_AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed}",
        BROKER_AWS_CONNECTION_BUDGET="2",
    )
    process.start()
    try:
        refused = refusal(lambda: grant(process.stub, "i-0123456789abcdef0", "some-bucket"))
        listed = process.stub.ListGrants(pb.ListGrantsRequest())
    finally:
        process.stop()

    assert refused.code == grpc.StatusCode.UNAVAILABLE
    assert "EndpointConnectionError" in refused.message
    assert list(listed.grants) == []
