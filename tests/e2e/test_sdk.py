"""The Python SDK against the real broker process on the emulator with IAM enforced."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from accessbroker import Access, BrokerClient, GrantState, errors
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import associate_foreign_profile, aws_policy, aws_role_exists, role_name


@pytest.fixture
def sdk(broker: BrokerProcess) -> Iterator[BrokerClient]:
    with BrokerClient(broker.address, timeout=60) as client:
        yield client


def test_grant_get_describe_audit_revoke(
    sdk: BrokerClient, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    data, _ = buckets
    before = datetime.now(UTC)

    result = sdk.grant(
        instance_id, data, "upload", prefix="up/", ttl=timedelta(hours=8), reason="nightly"
    )

    granted = result.grant
    assert granted.state is GrantState.ACTIVE
    assert granted.access is Access.UPLOAD
    assert (granted.instance_id, granted.bucket, granted.prefix) == (instance_id, data, "up/")
    assert granted.reason == "nightly"
    assert granted.role_name == role_name(instance_id)
    assert granted.association_id.startswith("iip-assoc-")
    assert granted.expires_at is not None
    assert abs(granted.expires_at - (before + timedelta(hours=8))) < timedelta(minutes=1)
    assert result.policy == aws_policy(emulator, instance_id)
    assert emulator.try_as_instance(instance_id, "PutObject", data, "up/a.txt") == ALLOWED

    assert sdk.get(granted.grant_id) == granted

    described = sdk.describe(instance_id)
    assert isinstance(described.policy, dict)
    assert described.policy == aws_policy(emulator, instance_id)
    assert described.role_name == role_name(instance_id)
    assert [g.grant_id for g in described.grants] == [granted.grant_id]

    revoked = sdk.revoke(granted.grant_id, reason="done")
    assert revoked.grant_id == granted.grant_id
    assert revoked.state is GrantState.REVOKED
    assert sdk.wait(granted.grant_id, "revoked", timeout=10).state is GrantState.REVOKED
    assert not aws_role_exists(emulator, instance_id)

    actions = [e.action for e in sdk.audit(grant_id=granted.grant_id)]
    assert "grant.requested" in actions
    assert "grant.revoke_requested" in actions
    events = list(sdk.audit(instance_id=instance_id))
    assert {e.instance_id for e in events} == {instance_id}
    assert [e.event_id for e in events] == sorted(e.event_id for e in events)
    assert all(isinstance(e.detail, dict) for e in events)


def test_access_as_enum_and_list_grants_with_filters(
    sdk: BrokerClient, instance_id: str, buckets: tuple[str, str]
) -> None:
    data, other = buckets
    first = sdk.grant(instance_id, data, Access.READ_WRITE, prefix="rw/").grant
    second = sdk.grant(instance_id, other, "list", ttl=3600).grant
    sdk.revoke(first.grant_id)

    mine = list(sdk.list_grants(instance_id=instance_id))
    assert [g.grant_id for g in mine] == [first.grant_id, second.grant_id]
    assert [g.access for g in mine] == [Access.READ_WRITE, Access.LIST]
    in_other = list(sdk.list_grants(instance_id=instance_id, bucket=other))
    assert [g.grant_id for g in in_other] == [second.grant_id]
    active = list(sdk.list_grants(instance_id=instance_id, state="active"))
    assert [g.grant_id for g in active] == [second.grant_id]
    revoked = list(sdk.list_grants(instance_id=instance_id, state=GrantState.REVOKED))
    assert [g.grant_id for g in revoked] == [first.grant_id]


def test_bad_request_is_invalid_argument_with_violations(
    sdk: BrokerClient, instance_id: str
) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        sdk.grant(instance_id, "Not_A_Bucket", "upload", prefix="/lead")

    assert set(raised.value.violations) == {"bucket", "prefix"}
    assert all(raised.value.violations.values())
    assert str(raised.value)
    assert list(sdk.list_grants(instance_id=instance_id)) == []


def test_unknown_instance_and_grant_are_not_found(
    sdk: BrokerClient, buckets: tuple[str, str]
) -> None:
    unknown_grant = str(uuid.uuid4())

    with pytest.raises(errors.NotFound, match="i-0123456789abcdef0"):
        sdk.grant("i-0123456789abcdef0", buckets[0], "read")
    with pytest.raises(errors.NotFound):
        sdk.get(unknown_grant)
    with pytest.raises(errors.NotFound):
        sdk.revoke(unknown_grant)


def test_foreign_profile_is_failed_precondition(
    sdk: BrokerClient, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    name = associate_foreign_profile(emulator, instance_id)

    with pytest.raises(errors.FailedPrecondition, match=name) as raised:
        sdk.grant(instance_id, buckets[0], "upload")

    assert raised.value.reason == "FOREIGN_PROFILE"
    assert raised.value.metadata["instanceId"] == instance_id
    assert raised.value.metadata["profileArn"].endswith(f":instance-profile/{name}")
    assert not aws_role_exists(emulator, instance_id)


def test_refusals_that_share_a_status_are_told_apart_by_their_reason(
    sdk: BrokerClient, instance_id: str, buckets: tuple[str, str]
) -> None:
    revoked = sdk.grant(instance_id, buckets[0], "read", prefix="done/").grant
    sdk.revoke(revoked.grant_id, reason="done")

    with pytest.raises(errors.FailedPrecondition) as wrong_state:
        sdk.extend(revoked.grant_id, timedelta(hours=1), reason="one more hour")

    def fill_the_policy() -> None:
        # Prefixes near S3's 1024-byte limit pass IAM's 10,240 characters in a handful of grants.
        for n in range(20):
            sdk.grant(instance_id, buckets[0], "read", prefix=f"{n}/{'p' * 1000}/")

    with pytest.raises(errors.ResourceExhausted) as too_large:
        fill_the_policy()

    assert wrong_state.value.reason == "WRONG_STATE"
    assert wrong_state.value.metadata == {"grantId": revoked.grant_id, "state": "revoked"}
    assert too_large.value.reason == "POLICY_TOO_LARGE"
    assert too_large.value.metadata["limit"] == "10240"
    assert int(too_large.value.metadata["policySize"]) > 10_240


def test_dry_run_reports_the_plan_and_leaves_nothing(
    sdk: BrokerClient, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    result = sdk.grant(instance_id, buckets[0], "read", prefix="in/", dry_run=True)

    assert result.planned_changes
    assert isinstance(result.policy, dict)
    assert list(sdk.list_grants(instance_id=instance_id)) == []
    assert not aws_role_exists(emulator, instance_id)


def test_the_same_idempotency_key_returns_the_same_grant(
    sdk: BrokerClient, instance_id: str, buckets: tuple[str, str]
) -> None:
    key = f"sdk-e2e-{uuid.uuid4()}"

    first = sdk.grant(instance_id, buckets[0], "upload", prefix="k/", idempotency_key=key)
    again = sdk.grant(instance_id, buckets[0], "upload", prefix="k/", idempotency_key=key)

    assert again.grant.grant_id == first.grant.grant_id
    assert len(list(sdk.list_grants(instance_id=instance_id))) == 1
    with pytest.raises(errors.AlreadyExists):
        sdk.grant(instance_id, buckets[1], "read", idempotency_key=key)
