"""Durations in configuration and messages: 90s, 15m, 8h, 2d, 1h30m."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("8h", 28_800), ("2d", 172_800), ("1w", 604_800), ("1H30m", 5400)],
)
def test_durations_are_read(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "8", "3600", "8 hours", "-1h", "0s", "1.5h", "h"])
def test_anything_else_is_refused_saying_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(28_800, "8h"), (93_600, "1d2h"), (90, "1m30s"), (0, "0s")]
)
def test_durations_are_written_shortest(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


@given(st.integers(min_value=1, max_value=10**9))
def test_what_is_written_reads_back(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value
