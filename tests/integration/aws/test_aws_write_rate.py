"""The budget for AWS writes: a token bucket that spreads a burst out instead of letting IAM
throttle it, applied by the adapters to every write attempt and to no read."""

import pytest
from mypy_boto3_iam.client import IAMClient

from broker.adapters.aws import BotoIam
from broker.adapters.aws.rate import WriteRate
from broker.domain.errors import DeadlineExceeded
from broker.domain.naming import DEFAULT_ROLE_PATH
from broker.domain.trust import EC2_TRUST_POLICY
from broker.service import deadlines
from tests.integration.aws.clock import FakeClock
from tests.integration.aws.names import fresh_instance_id


class Waits:
    """A sleep that records what it was asked to wait and lets no time pass: as callers that
    all arrive at the same moment."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def test_a_burst_beyond_the_bucket_is_spread_a_token_apart() -> None:
    waits = Waits()
    rate = WriteRate(10, burst=2, clock=FakeClock(), sleep=waits)

    for _ in range(5):
        rate.take("PutRolePolicy")

    assert waits.asked == pytest.approx([0.1, 0.2, 0.3])


def test_the_bucket_refills_with_time_up_to_its_burst() -> None:
    clock, waits = FakeClock(), Waits()
    rate = WriteRate(2, burst=2, clock=clock, sleep=waits)
    rate.take("CreateRole")
    rate.take("CreateRole")

    clock.now += 60.0  # an idle minute refills two tokens, not 120
    for _ in range(3):
        rate.take("CreateRole")

    assert waits.asked == pytest.approx([0.5])


def test_a_wait_past_the_callers_deadline_is_refused_and_takes_no_token() -> None:
    waits = Waits()
    rate = WriteRate(1, burst=1, clock=FakeClock(), sleep=waits)
    rate.take("CreateRole")

    with deadlines.deadline_in(0.5), pytest.raises(DeadlineExceeded, match="BROKER_AWS_WRITE"):
        rate.take("PutRolePolicy")
    rate.take("PutRolePolicy")

    assert waits.asked == [1.0]


def test_the_rate_is_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        WriteRate(0)


def test_the_iam_adapter_budgets_each_write_and_no_read(iam_client: IAMClient) -> None:
    waits = Waits()
    rate = WriteRate(1, burst=1, clock=FakeClock(), sleep=waits)
    iam = BotoIam(iam_client, propagation_timeout=5.0, writes=rate)
    name = f"accessbroker-{fresh_instance_id()}"

    iam.create_role(name, DEFAULT_ROLE_PATH, EC2_TRUST_POLICY, {})
    iam.get_role(name)
    iam.list_inline_policies(name)
    iam.delete_role(name)

    # Two writes: the first had the bucket's token; the delete waited a second for the next.
    assert waits.asked == [1.0]
    assert iam.get_role(name) is None
