"""Durations as people write them in configuration and messages: 90s, 15m, 8h, 2d, 1h30m.

The same spelling as brokerctl's --ttl; the SDK is a separate distribution, so the server keeps
its own few lines rather than importing the client's.
"""

import re
from datetime import timedelta

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"(?:\d+[wdhms])+")


def parse_duration(text: str) -> timedelta:
    """A positive duration such as "8h" or "1h30m"; raises ValueError saying what is accepted."""
    compact = text.strip().lower()
    if not _WHOLE.fullmatch(compact):
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit (s, m, h, d, w), e.g. 90s, "
            "15m, 8h, 2d or 1h30m"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest spelling parse_duration reads back, in whole seconds: 8h, 1d2h, 1m30s."""
    remaining = int(value.total_seconds())
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, remaining = divmod(remaining, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
