"""Idempotency keys: a retried request with the same key gets the first result, never a second."""

import hashlib
import json
from typing import Any

from broker.domain.errors import IdempotencyConflict
from broker.domain.validation import MAX_IDEMPOTENCY_KEY_CHARS, free_text_problems, require
from broker.service.ports import IdempotencyRecord, UnitOfWork


def fingerprint(**request: Any) -> str:
    """A digest of everything that makes two requests the same request."""
    canonical = json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_problems(key: str) -> list[str]:
    return free_text_problems(key, MAX_IDEMPOTENCY_KEY_CHARS)


def check_key(key: str) -> None:
    require({"idempotency_key": key_problems(key)})


def earlier_grant_id(uow: UnitOfWork, operation: str, key: str, digest: str) -> str | None:
    """The grant a previous use of `key` produced, or None on first use; refuses a reused key."""
    if not key:
        return None
    record = uow.idempotency.get(operation, key)
    if record is None:
        return None
    if record.fingerprint != digest:
        raise IdempotencyConflict(key)
    return record.grant_id


def remember(uow: UnitOfWork, record: IdempotencyRecord) -> None:
    if record.key:
        uow.idempotency.add(record)
