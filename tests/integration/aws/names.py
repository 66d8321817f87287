"""Fresh names for what tests make in the emulator, which the whole session shares and never
resets."""

import uuid


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def fresh_instance_id() -> str:
    return f"i-{uuid.uuid4().hex[:17]}"
