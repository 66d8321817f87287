"""Whether one more role and instance profile fit in an account's IAM quotas, less a headroom."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.quotas import DEFAULT_HEADROOM, AccountUsage, quota_refusal


def usage(roles: int = 0, profiles: int = 0, quota: int = 1000) -> AccountUsage:
    return AccountUsage(
        roles=roles, roles_quota=quota, instance_profiles=profiles, instance_profiles_quota=quota
    )


def test_the_default_headroom_keeps_five_percent_free() -> None:
    assert DEFAULT_HEADROOM == 0.05
    # 1,000 roles less 5%: the 950th is the last the broker creates.
    assert quota_refusal(usage(roles=949)) is None
    assert quota_refusal(usage(roles=950)) is not None


@pytest.mark.parametrize(
    ("quota", "headroom", "last_allowed"),
    [
        (1000, 0.05, 949),
        (5000, 0.05, 4749),
        (1000, 0.0, 999),
        (1000, 0.1, 899),
        # 1000 * (1 - 0.07) is 929.9999... in floats: the limit is still 930.
        (1000, 0.07, 929),
        (100, 0.25, 74),
        # The limit need not be whole: 10 * 0.95 = 9.5, so 9 in use is one too many.
        (10, 0.05, 8),
    ],
)
@pytest.mark.parametrize("kind", ["roles", "instance profiles"])
def test_one_more_is_refused_exactly_past_the_limit(
    quota: int, headroom: float, last_allowed: int, kind: str
) -> None:
    def at(used: int) -> AccountUsage:
        return (
            usage(roles=used, quota=quota) if kind == "roles" else usage(profiles=used, quota=quota)
        )

    assert quota_refusal(at(last_allowed - 1), headroom, "prod (222222222222)") is None
    assert quota_refusal(at(last_allowed), headroom, "prod (222222222222)") is None
    refusal = quota_refusal(at(last_allowed + 1), headroom, "prod (222222222222)")
    assert refusal is not None
    assert "account prod (222222222222)" in refusal
    assert f"{kind}: {last_allowed + 1} of {quota} in use" in refusal
    assert f"{headroom * 100:g}% of the quota is kept free" in refusal


def test_a_full_quota_is_refused_even_without_headroom() -> None:
    assert quota_refusal(usage(roles=1000), 0.0, "home") is not None
    assert quota_refusal(usage(profiles=1200), 0.0, "home") is not None


def test_the_refusal_names_every_quota_past_its_limit() -> None:
    refusal = quota_refusal(usage(roles=960, profiles=980), 0.05, "prod (222222222222)")
    assert refusal == (
        "account prod (222222222222) is near its IAM quotas ("
        "roles: 960 of 1000 in use, and 5% of the quota is kept free; "
        "instance profiles: 980 of 1000 in use, and 5% of the quota is kept free)"
    )


def test_only_the_quota_past_its_limit_is_named() -> None:
    roles_full = AccountUsage(
        roles=4800, roles_quota=5000, instance_profiles=10, instance_profiles_quota=1000
    )
    refusal = quota_refusal(roles_full, 0.05, "dev (333333333333)")
    assert refusal is not None
    assert "roles: 4800 of 5000" in refusal
    assert "instance profiles" not in refusal

    # Raised role quotas do not help when the profiles' quota is the one reached.
    profiles_full = AccountUsage(
        roles=10, roles_quota=5000, instance_profiles=999, instance_profiles_quota=1000
    )
    refusal = quota_refusal(profiles_full, 0.05, "dev (333333333333)")
    assert refusal is not None
    assert "instance profiles: 999 of 1000" in refusal
    assert "roles:" not in refusal


@pytest.mark.parametrize("headroom", [-0.1, 1.0, 1.5])
def test_a_headroom_outside_zero_to_one_is_a_mistake(headroom: float) -> None:
    with pytest.raises(ValueError, match="quota headroom"):
        quota_refusal(usage(), headroom, "home")


@given(
    quota=st.integers(min_value=1, max_value=10_000),
    used=st.integers(min_value=0, max_value=12_000),
    percent=st.integers(min_value=0, max_value=99),
)
def test_refused_exactly_when_one_more_would_pass_the_limit(
    quota: int, used: int, percent: int
) -> None:
    # The rule in whole numbers: used + 1 > quota * (100 - percent) / 100.
    past = (used + 1) * 100 > quota * (100 - percent)
    refused = quota_refusal(usage(roles=used, quota=quota), percent / 100, "home")
    assert (refused is not None) == past
