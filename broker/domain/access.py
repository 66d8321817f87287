"""Access levels and grant states."""

from enum import StrEnum


class Access(StrEnum):
    """What a grant lets an instance do under `bucket/prefix`."""

    UPLOAD = "upload"
    READ = "read"
    READ_WRITE = "read-write"
    LIST = "list"


class GrantState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    FAILED = "failed"
    REVOKING = "revoking"
    REVOKED = "revoked"
    EXPIRED = "expired"

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
        return self in (GrantState.FAILED, GrantState.REVOKED, GrantState.EXPIRED)
