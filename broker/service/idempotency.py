"""Idempotency keys: a retried request with the same key gets the first result, never a second.

The pipeline binds a command's key to a fingerprint of what it asks (`key_for`), looks for an
earlier use before the handler runs (`earlier`), and the settle step records the key in the
same transaction as the change it produced (`remember`), so no crash can separate the two.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.domain.errors import IdempotencyConflict
from broker.service.authorization import Permit
from broker.service.commands import Command, GrantAccess, RevokeAccess
from broker.service.ports import IdempotencyRecord, UnitOfWork


@dataclass(frozen=True)
class IdempotencyKey:
    """A caller's key, bound to the operation and the fingerprint of its request."""

    key: str = ""
    operation: str = ""
    fingerprint: str = ""

    def earlier(self, uow: UnitOfWork) -> str | None:
        """The grant a previous use of the key produced, None on first use (or without a key);
        IdempotencyConflict when the key was used for a different request."""
        if not self.key:
            return None
        record = uow.idempotency.get(self.operation, self.key)
        if record is None:
            return None
        if record.fingerprint != self.fingerprint:
            raise IdempotencyConflict(self.key)
        return record.grant_id

    def remember(self, uow: UnitOfWork, grant_id: str, now: datetime) -> None:
        if self.key:
            uow.idempotency.add(
                IdempotencyRecord(self.key, self.operation, self.fingerprint, grant_id, now)
            )


NO_KEY = IdempotencyKey()


def key_for(command: Command[object], permit: Permit) -> IdempotencyKey:
    """The command's key and what makes two requests the same request (the stored
    fingerprints depend on exactly these fields: change them only with a migration; the
    place joined them with many accounts, so a retry sent across that upgrade is a conflict)."""
    if isinstance(command, GrantAccess) and command.idempotency_key:
        request = permit.the_request()
        digest = _fingerprint(
            instance_id=request.instance_id,
            place=str(request.place),
            scope=request.scope,
            ttl=request.ttl,
            reason=request.reason,
            actor=command.actor,
        )
        return IdempotencyKey(command.idempotency_key, "grant", digest)
    if isinstance(command, RevokeAccess) and command.idempotency_key:
        digest = _fingerprint(grant_id=command.grant_id, reason=command.reason, actor=command.actor)
        return IdempotencyKey(command.idempotency_key, "revoke", digest)
    return NO_KEY


def _fingerprint(**request: Any) -> str:
    canonical = json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
