"""An account's IAM quotas: how many roles and instance profiles it holds and may hold, and
whether the broker may create one more of each.

Roles and instance profiles per account are quotas (1,000 each by default, 5,000 at most);
the broker creates one of each per instance it grants to. It keeps a headroom free, so that it
never takes an account's last roles from the people and tools that share it.
"""

from dataclasses import dataclass

# The fraction of each quota the broker leaves free unless told otherwise.
DEFAULT_HEADROOM = 0.05


@dataclass(frozen=True)
class AccountUsage:
    """IAM's figures for one account (GetAccountSummary)."""

    roles: int
    roles_quota: int
    instance_profiles: int
    instance_profiles_quota: int


def quota_refusal(
    usage: AccountUsage, headroom: float = DEFAULT_HEADROOM, account_label: str = "the account"
) -> str | None:
    """Why creating one more role and its instance profile would eat into the headroom (the
    fraction of each quota to keep free), naming the account and the figures; None when it
    would not. One more is refused when used + 1 > quota * (1 - headroom)."""
    if not 0 <= headroom < 1:
        raise ValueError(f"a quota headroom is a fraction in [0, 1), not {headroom}")
    problems = [
        f"{what}: {used} of {quota} in use, and {headroom * 100:g}% of the quota is kept free"
        for what, used, quota in (
            ("roles", usage.roles, usage.roles_quota),
            ("instance profiles", usage.instance_profiles, usage.instance_profiles_quota),
        )
        # Rounded, so that float arithmetic cannot move the limit across a whole number.
        if used + 1 > round(quota * (1 - headroom), 6)
    ]
    if not problems:
        return None
    return f"account {account_label} is near its IAM quotas ({'; '.join(problems)})"
