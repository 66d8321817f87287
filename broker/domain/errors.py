"""Errors the broker reports to its callers. The gRPC entrypoint maps each to one status code."""

from dataclasses import dataclass


class BrokerError(Exception):
    """Base of every error meant for the caller; its message is safe to show."""


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidRequest(BrokerError):
    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))


class InstanceNotFound(BrokerError):
    def __init__(self, instance_id: str) -> None:
        super().__init__(f"instance {instance_id} does not exist")


class GrantNotFound(BrokerError):
    def __init__(self, grant_id: str) -> None:
        super().__init__(f"grant {grant_id} does not exist")


class ForeignProfile(BrokerError):
    """The instance holds an instance profile the broker does not manage."""

    def __init__(
        self, instance_id: str, profile_arn: str, why: str = "which the broker does not manage"
    ) -> None:
        self.profile_arn = profile_arn
        super().__init__(
            f"instance {instance_id} already has instance profile {profile_arn}, "
            f"{why}; nothing was changed"
        )


class ForeignRole(BrokerError):
    """A role or profile with the broker's name exists but was not created by the broker."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            f"{kind} {name} exists but is not tagged as managed by accessbroker; "
            "the broker will not modify it"
        )


class WrongState(BrokerError):
    def __init__(self, grant_id: str, state: str, wanted: str) -> None:
        super().__init__(f"grant {grant_id} is {state}; {wanted}")


class PolicyTooLarge(BrokerError):
    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the instance's policy would be {size} characters, over IAM's limit of {limit} "
            "for a role's inline policies; revoke grants or use broader prefixes"
        )


class IdempotencyConflict(BrokerError):
    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")


class AwsUnavailable(BrokerError):
    """AWS did not answer successfully within the retry budget; the work can be resumed."""


class DeadlineExceeded(BrokerError):
    """The caller's deadline passed before the work was done; what was recorded is finished
    later by the reconciler."""


class StoreUnavailable(BrokerError):
    """The database did not answer; nothing was changed by this request."""


class TooManyStreams(BrokerError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the broker already serves {limit} audit streams, its limit; retry later, or page "
            "through ListAuditEvents"
        )


class AwsRejected(BrokerError):
    """AWS refused a call for a reason retrying will not fix (e.g. AccessDenied)."""


class GuardrailViolation(BrokerError):
    """A policy about to be put grants more than its grants' scopes: a bug, refused."""


class AwsQuotaExceeded(AwsRejected):
    """An AWS quota (roles or instance profiles per account, say) would be exceeded."""


class Unauthenticated(BrokerError):
    """The caller sent no credentials, or credentials the broker does not accept. The message
    never repeats what was sent."""


class PermissionDenied(BrokerError):
    """The caller is known, but the access policy does not let it do this; says why."""
