"""Waiting out IAM's eventual consistency, which no botocore retry mode covers.

A call that fails only because IAM has not yet propagated a new role or profile is repeated with
jittered exponential backoff until a time budget runs out (Terraform's AWS provider waits 2 min).
"""

from collections.abc import Callable

from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_random_exponential

# The first retries come quickly (propagation usually takes a second or two), later ones at most
# every few seconds, so a long budget does not turn into a burst of calls.
_FIRST_WAIT_SECONDS = 0.25
_MAX_WAIT_SECONDS = 5.0


def until_propagated(
    is_propagation_error: Callable[[BaseException], bool], *, budget_seconds: float
) -> Retrying:
    """Retries while `is_propagation_error`; raises tenacity.RetryError once the budget is spent.

    Any other exception propagates unchanged at once.
    """
    return Retrying(
        retry=retry_if_exception(is_propagation_error),
        # Stop before a wait that would overrun the budget rather than after it.
        stop=stop_before_delay(budget_seconds),
        wait=wait_random_exponential(multiplier=_FIRST_WAIT_SECONDS, max=_MAX_WAIT_SECONDS),
    )
