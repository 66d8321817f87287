"""The clock and id source of a running broker."""

import uuid
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    def new_grant_id(self) -> str:
        return str(uuid.uuid4())
