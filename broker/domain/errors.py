"""Errors the broker reports to its callers. The gRPC entrypoint maps each to one status code.

Each error also has a `reason`: a stable UPPER_SNAKE name a program can branch on (sent as
google.rpc.ErrorInfo in the `ERROR_DOMAIN`; docs/errors.md lists them). Several errors share a
status code (FAILED_PRECONDITION is a foreign profile or a grant in the wrong state); the reason
tells them apart. A reason, once published, is never renamed or reused: callers match on it.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from broker.domain.places import InstanceRef

# The ErrorInfo domain every reason belongs to: an identifier, not an address. The Python SDK
# keeps a copy (clients/python/accessbroker/errors.py), which a unit test holds equal to this.
ERROR_DOMAIN = "accessbroker.dev"

_REASON = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*")


class BrokerError(Exception):
    """Base of every error meant for the caller; its message is safe to show.

    `metadata` holds facts a program may want without parsing the message; only what the
    message already shows the caller goes there."""

    # Empty only here: a bare BrokerError has no reason of its own and is sent without one.
    reason: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        # Checked at import, so a new error cannot ship without its own reason, nor inherit its
        # parent's (AwsQuotaExceeded must not read as AwsRejected).
        super().__init_subclass__(**kwargs)
        reason = cls.__dict__.get("reason")
        if not isinstance(reason, str) or not _REASON.fullmatch(reason):
            raise TypeError(f"{cls.__name__} needs its own UPPER_SNAKE `reason`, not {reason!r}")

    @property
    def metadata(self) -> Mapping[str, str]:
        return {}


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidRequest(BrokerError):
    reason = "INVALID_REQUEST"

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))


class InstanceNotFound(BrokerError):
    reason = "INSTANCE_NOT_FOUND"

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"instance {instance_id} does not exist")

    @property
    def metadata(self) -> Mapping[str, str]:
        return {"instanceId": self.instance_id}


class GrantNotFound(BrokerError):
    reason = "GRANT_NOT_FOUND"

    def __init__(self, grant_id: str) -> None:
        self.grant_id = grant_id
        super().__init__(f"grant {grant_id} does not exist")

    @property
    def metadata(self) -> Mapping[str, str]:
        return {"grantId": self.grant_id}


class ForeignProfile(BrokerError):
    """The instance holds an instance profile the broker does not manage."""

    reason = "FOREIGN_PROFILE"

    def __init__(
        self, instance_id: str, profile_arn: str, why: str = "which the broker does not manage"
    ) -> None:
        self.instance_id = instance_id
        self.profile_arn = profile_arn
        super().__init__(
            f"instance {instance_id} already has instance profile {profile_arn}, "
            f"{why}; nothing was changed"
        )

    @property
    def metadata(self) -> Mapping[str, str]:
        return {"instanceId": self.instance_id, "profileArn": self.profile_arn}


class OutsideBoundary(BrokerError):
    """The account's permissions boundary would cut the grant: the instance would be refused
    what it was granted, so nothing is granted."""

    reason = "OUTSIDE_BOUNDARY"

    def __init__(self, account: str, bucket: str, cuts: list[str]) -> None:
        self.account, self.bucket = account, bucket
        super().__init__(
            f"accessbroker-boundary, the permissions boundary of account {account}, does not "
            f"allow the grant on bucket {bucket} ({'; '.join(cuts)}): the instance would be "
            "refused it, so nothing was granted. The platform team widens the boundary to "
            "allow it, then reloads the broker (SIGHUP)"
        )

    @property
    def metadata(self) -> Mapping[str, str]:
        return {"account": self.account, "bucket": self.bucket}


class ForeignRole(BrokerError):
    """A role or profile with the broker's name exists but was not created by the broker."""

    reason = "FOREIGN_ROLE"

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(
            f"{kind} {name} exists but is not tagged as managed by accessbroker; "
            "the broker will not modify it"
        )

    @property
    def metadata(self) -> Mapping[str, str]:
        return {"kind": self.kind, "name": self.name}


class WrongState(BrokerError):
    reason = "WRONG_STATE"

    def __init__(self, grant_id: str, state: str, wanted: str) -> None:
        self.grant_id = grant_id
        self.state = state
        super().__init__(f"grant {grant_id} is {state}; {wanted}")

    @property
    def metadata(self) -> Mapping[str, str]:
        return {"grantId": self.grant_id, "state": self.state}


class PolicyTooLarge(BrokerError):
    reason = "POLICY_TOO_LARGE"

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the instance's policy would be {size} characters, over IAM's limit of {limit} "
            "for a role's inline policies; revoke grants or use broader prefixes"
        )

    @property
    def metadata(self) -> Mapping[str, str]:
        return {"policySize": str(self.size), "limit": str(self.limit)}


class IdempotencyConflict(BrokerError):
    reason = "IDEMPOTENCY_CONFLICT"

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")


class AwsUnavailable(BrokerError):
    """AWS did not answer successfully within the retry budget; the work can be resumed."""

    reason = "AWS_UNAVAILABLE"


class DeadlineExceeded(BrokerError):
    """The caller's deadline passed before the work was done; what was recorded is finished
    later by the reconciler."""

    reason = "DEADLINE_EXCEEDED"


class StoreUnavailable(BrokerError):
    """The database did not answer; nothing was changed by this request."""

    reason = "STORE_UNAVAILABLE"


class TooManyStreams(BrokerError):
    reason = "TOO_MANY_STREAMS"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"the broker already serves {limit} audit streams, its limit; retry later, or page "
            "through ListAuditEvents"
        )

    @property
    def metadata(self) -> Mapping[str, str]:
        return {"limit": str(self.limit)}


class AwsRejected(BrokerError):
    """AWS refused a call for a reason retrying will not fix (e.g. AccessDenied)."""

    reason = "AWS_REJECTED"


class GuardrailViolation(BrokerError):
    """A policy about to be put grants more than its grants' scopes: a bug, refused."""

    reason = "GUARDRAIL_VIOLATION"


class AwsQuotaExceeded(AwsRejected):
    """An AWS quota (roles or instance profiles per account, say) would be exceeded."""

    reason = "AWS_QUOTA_EXCEEDED"


class Unauthenticated(BrokerError):
    """The caller sent no credentials, or credentials the broker does not accept. The message
    never repeats what was sent."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(BrokerError):
    """The caller is known, but the access policy does not let it do this; says why. Refusing a
    caller another's grant names that grant's instance and id, for the audit trail only: the
    caller, who may not read the grant, is shown neither."""

    reason = "PERMISSION_DENIED"

    def __init__(
        self, why: str, *, instance: InstanceRef | None = None, grant_id: str = ""
    ) -> None:
        self.instance, self.grant_id = instance, grant_id
        super().__init__(why)
