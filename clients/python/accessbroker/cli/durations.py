"""Durations as people write them: 90s, 15m, 8h, 2d, or combined as 1h30m."""

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"(?:\d+[smhdw])+")


def parse_duration(text: str) -> timedelta:
    """A positive duration such as "8h" or "1h30m"; raises ValueError saying what is accepted."""
    compact = text.strip().lower()
    if not _WHOLE.fullmatch(compact):
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit (s, m, h, d, w), e.g. 90s, 15m, "
            "8h, 2d or 1h30m"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than zero")
    return timedelta(seconds=seconds)


def parse_timeout(text: str) -> float:
    """Seconds, written as a plain number ("30", "2.5") or as a duration ("2m")."""
    try:
        seconds = float(text)
    except ValueError:
        return parse_duration(text).total_seconds()
    if not seconds > 0:
        raise ValueError(f"invalid timeout {text!r}: must be a positive number of seconds")
    return seconds


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling: 8h, 1h30m, 90s reads as 1m30s, 0 as 0s."""
    remaining = int(value.total_seconds())
    if remaining <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
