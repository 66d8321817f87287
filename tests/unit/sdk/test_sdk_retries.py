"""UNAVAILABLE is retried with backoff; grant and revoke stay safe through one idempotency key."""

import grpc
import pytest

from accessbroker import BrokerClient, GrantState, errors
from accessbroker.v1 import broker_pb2 as pb
from tests.unit.sdk.fake_broker import Abort, FakeBroker
from tests.unit.sdk.messages import GRANT_ID, INSTANCE, grant_message

UNAVAILABLE = Abort(grpc.StatusCode.UNAVAILABLE, "the broker is restarting")


def test_grant_retries_unavailable_with_the_same_generated_idempotency_key(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer(
        "GrantAccess", UNAVAILABLE, UNAVAILABLE, pb.GrantAccessResponse(grant=grant_message())
    )

    result = client.grant(INSTANCE, "reports", "upload")

    assert result.grant.grant_id == GRANT_ID
    keys = [r.idempotency_key for r in fake.requests("GrantAccess", pb.GrantAccessRequest)]
    assert len(keys) == 3
    assert keys[0] != ""
    assert keys == [keys[0]] * 3


def test_each_grant_call_gets_its_own_generated_key(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("GrantAccess", pb.GrantAccessResponse(grant=grant_message()))

    client.grant(INSTANCE, "reports", "upload")
    client.grant(INSTANCE, "reports", "upload")

    first, second = fake.requests("GrantAccess", pb.GrantAccessRequest)
    assert first.idempotency_key != second.idempotency_key


def test_an_explicit_idempotency_key_is_sent_on_every_attempt(
    fake: FakeBroker, client: BrokerClient
) -> None:
    fake.answer("GrantAccess", UNAVAILABLE, pb.GrantAccessResponse(grant=grant_message()))

    client.grant(INSTANCE, "reports", "upload", idempotency_key="ticket-42")

    keys = [r.idempotency_key for r in fake.requests("GrantAccess", pb.GrantAccessRequest)]
    assert keys == ["ticket-42", "ticket-42"]


def test_revoke_retries_unavailable_with_the_same_generated_idempotency_key(
    fake: FakeBroker, client: BrokerClient
) -> None:
    revoked = grant_message(state=pb.GRANT_STATE_REVOKED)
    fake.answer("RevokeAccess", UNAVAILABLE, UNAVAILABLE, pb.RevokeAccessResponse(grant=revoked))

    assert client.revoke(GRANT_ID).state is GrantState.REVOKED

    keys = [r.idempotency_key for r in fake.requests("RevokeAccess", pb.RevokeAccessRequest)]
    assert len(keys) == 3
    assert keys[0] != ""
    assert keys == [keys[0]] * 3


def test_reads_retry_unavailable(fake: FakeBroker, client: BrokerClient) -> None:
    fake.answer("GetGrant", UNAVAILABLE, UNAVAILABLE, grant_message())
    fake.answer("ListGrants", UNAVAILABLE, pb.ListGrantsResponse(grants=[grant_message()]))
    fake.answer("DescribeInstanceAccess", UNAVAILABLE, pb.InstanceAccess(instance_id=INSTANCE))

    assert client.get(GRANT_ID).grant_id == GRANT_ID
    assert [g.grant_id for g in client.list_grants()] == [GRANT_ID]
    assert client.describe(INSTANCE).instance_id == INSTANCE

    assert len(fake.calls["GetGrant"]) == 3
    assert len(fake.calls["ListGrants"]) == 2
    assert len(fake.calls["DescribeInstanceAccess"]) == 2


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (grpc.StatusCode.INTERNAL, errors.Internal),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhausted),
    ],
)
def test_other_errors_are_not_retried(
    fake: FakeBroker,
    client: BrokerClient,
    code: grpc.StatusCode,
    error_class: type[errors.BrokerError],
) -> None:
    fake.answer("GrantAccess", Abort(code, "no"), pb.GrantAccessResponse(grant=grant_message()))

    with pytest.raises(error_class):
        client.grant(INSTANCE, "reports", "upload")

    assert len(fake.calls["GrantAccess"]) == 1
