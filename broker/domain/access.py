"""Access levels and grant states."""

from enum import StrEnum


class Access(StrEnum):
    """What a grant lets an instance do under `bucket/prefix`."""

    UPLOAD = "upload"
    READ = "read"
    READ_WRITE = "read-write"
    LIST = "list"


class GrantState(StrEnum):
    # Requested under a rule that needs approval: nothing in AWS until it is approved.
    AWAITING_APPROVAL = "awaiting_approval"
    PENDING = "pending"
    ACTIVE = "active"
    FAILED = "failed"
    REVOKING = "revoking"
    REVOKED = "revoked"
    EXPIRED = "expired"
    # An approver refused the request.
    DENIED = "denied"

    @property
    def is_desired(self) -> bool:
        """True when AWS should hold this grant's permissions."""
        return self in (GrantState.PENDING, GrantState.ACTIVE)

    @property
    def is_settling(self) -> bool:
        """True while convergence still owes this grant its end state."""
        return self in (GrantState.PENDING, GrantState.REVOKING)

    @property
    def is_final(self) -> bool:
        return self in (
            GrantState.FAILED,
            GrantState.REVOKED,
            GrantState.EXPIRED,
            GrantState.DENIED,
        )
