"""Every field of every answer arrives as a typed Python value."""

import json
from datetime import UTC, datetime, timedelta

from accessbroker import (
    Access,
    AuditEvent,
    BrokerClient,
    Grant,
    GrantResult,
    GrantState,
    InstanceAccess,
)
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import FakeBroker
from tests.unit.sdk.messages import (
    CREATED,
    EXPIRES,
    GRANT_ID,
    INSTANCE,
    UPDATED,
    event_message,
    grant_message,
)

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ObjectsReadWrite",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": ["arn:aws:s3:::reports/nightly/*"],
        }
    ],
}
EXPECTED_GRANT = Grant(
    grant_id=GRANT_ID,
    instance_id=INSTANCE,
    bucket="reports",
    prefix="nightly/",
    access=Access.READ_WRITE,
    state=GrantState.ACTIVE,
    role_name=f"accessbroker-{INSTANCE}",
    role_arn=f"arn:aws:iam::123456789012:role/accessbroker/accessbroker-{INSTANCE}",
    instance_profile_name=f"accessbroker-{INSTANCE}",
    instance_profile_arn=(
        f"arn:aws:iam::123456789012:instance-profile/accessbroker/accessbroker-{INSTANCE}"
    ),
    association_id="iip-assoc-0123456789abcdef0",
    created_at=CREATED,
    updated_at=UPDATED,
    expires_at=EXPIRES,
    requested_by="ci-pipeline",
    reason="nightly upload",
    failure_reason="",
)


def test_get_converts_every_field_of_a_grant(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("GetGrant", grant_message())

    grant = client.get(GRANT_ID)

    assert grant == EXPECTED_GRANT
    assert grant.created_at.tzinfo is not None
    assert grant.created_at.utcoffset() == timedelta(0)
    assert fake.requests("GetGrant", pb.GetGrantRequest) == [pb.GetGrantRequest(grant_id=GRANT_ID)]


def test_each_state_and_access_level_is_read(fake: FakeBroker, client: BrokerClient) -> None:
    states = {
        pb.GRANT_STATE_PENDING: GrantState.PENDING,
        pb.GRANT_STATE_ACTIVE: GrantState.ACTIVE,
        pb.GRANT_STATE_FAILED: GrantState.FAILED,
        pb.GRANT_STATE_REVOKING: GrantState.REVOKING,
        pb.GRANT_STATE_REVOKED: GrantState.REVOKED,
        pb.GRANT_STATE_EXPIRED: GrantState.EXPIRED,
    }
    accesses = {
        pb.ACCESS_UPLOAD: Access.UPLOAD,
        pb.ACCESS_READ: Access.READ,
        pb.ACCESS_READ_WRITE: Access.READ_WRITE,
        pb.ACCESS_LIST: Access.LIST,
    }
    grants = [grant_message(f"g-{wire}", state=wire) for wire in states]
    for message, wire_access in zip(grants, accesses, strict=False):
        message.access = wire_access
    fake.answer("ListGrants", pb.ListGrantsResponse(grants=grants))

    listed = list(client.list_grants())

    assert [g.state for g in listed] == list(states.values())
    assert [g.access for g in listed[: len(accesses)]] == list(accesses.values())


def test_a_grant_without_expiry_has_expires_at_none(fake: FakeBroker, client: BrokerClient) -> None:
    message = grant_message(state=pb.GRANT_STATE_FAILED)
    message.ClearField("expires_at")
    message.failure_reason = "the instance holds another profile"
    fake.answer("GetGrant", message)

    grant = client.get(GRANT_ID)

    assert grant.expires_at is None
    assert grant.failure_reason == "the instance holds another profile"
    assert grant.state is GrantState.FAILED


def test_grant_result_has_the_grant_the_policy_as_a_dict_and_the_plan(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer(
        "GrantAccess",
        pb.GrantAccessResponse(
            grant=grant_message(),
            policy_document=json.dumps(POLICY),
            planned_changes=["create role", "put inline policy"],
        ),
    )

    result = client.grant(INSTANCE, "reports", "read-write", prefix="nightly/", dry_run=True)

    assert result == GrantResult(
        grant=EXPECTED_GRANT,
        policy=POLICY,
        planned_changes=["create role", "put inline policy"],
    )


def test_grant_result_without_a_policy_has_policy_none(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message()))

    result = client.grant(INSTANCE, "reports", "upload")

    assert result.policy is None
    assert result.planned_changes == []


def test_describe_converts_every_field(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer(
        "DescribeInstanceAccess",
        pb.InstanceAccess(
            instance_id=INSTANCE,
            role_name="accessbroker-role",
            role_arn="arn:aws:iam::123456789012:role/accessbroker/accessbroker-role",
            instance_profile_name="accessbroker-profile",
            instance_profile_arn="arn:aws:iam::123456789012:instance-profile/x",
            association_id="iip-assoc-1",
            policy_document=json.dumps(POLICY),
            grants=[grant_message()],
        ),
    )

    described = client.describe(INSTANCE)

    assert described == InstanceAccess(
        instance_id=INSTANCE,
        role_name="accessbroker-role",
        role_arn="arn:aws:iam::123456789012:role/accessbroker/accessbroker-role",
        instance_profile_name="accessbroker-profile",
        instance_profile_arn="arn:aws:iam::123456789012:instance-profile/x",
        association_id="iip-assoc-1",
        policy=POLICY,
        grants=[EXPECTED_GRANT],
    )
    assert fake.requests("DescribeInstanceAccess", pb.DescribeInstanceAccessRequest) == [
        pb.DescribeInstanceAccessRequest(instance_id=INSTANCE)
    ]


def test_describe_of_an_instance_without_grants_has_policy_none(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("DescribeInstanceAccess", pb.InstanceAccess(instance_id=INSTANCE))

    described = client.describe(INSTANCE)

    assert described.policy is None
    assert described.grants == []


def test_audit_events_convert_every_field(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer(
        "ListAuditEvents",
        pb.ListAuditEventsResponse(events=[event_message(7), event_message(8, detail="")]),
    )

    events = list(client.audit(instance_id=INSTANCE, grant_id=GRANT_ID))

    assert events == [
        AuditEvent(
            event_id=7,
            time=datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC),
            actor="ci-pipeline",
            action="aws.role.created",
            grant_id=GRANT_ID,
            instance_id=INSTANCE,
            outcome="success",
            detail={"step": "role"},
        ),
        AuditEvent(
            event_id=8,
            time=CREATED,
            actor="ci-pipeline",
            action="aws.role.created",
            grant_id=GRANT_ID,
            instance_id=INSTANCE,
            outcome="success",
            detail={},
        ),
    ]
    assert fake.requests("ListAuditEvents", pb.ListAuditEventsRequest) == [
        pb.ListAuditEventsRequest(instance_id=INSTANCE, grant_id=GRANT_ID)
    ]
