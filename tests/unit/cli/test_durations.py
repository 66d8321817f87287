from datetime import timedelta

import pytest

from accessbroker.cli.durations import format_duration, parse_duration, parse_timeout


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("8h", 28_800),
        ("2d", 172_800),
        ("1w", 604_800),
        ("1h30m", 5_400),
        (" 8H ", 28_800),
    ],
)
def test_durations_people_write(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["8", "", "h", "8 h", "-8h", "1.5h", "8y", "0s", "0h0m", "8h-"])
def test_refused_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration") as refused:
        parse_duration(text)
    assert "8h" in str(refused.value) or "zero" in str(refused.value)


@pytest.mark.parametrize(("text", "seconds"), [("30", 30.0), ("2.5", 2.5), ("2m", 120.0)])
def test_timeouts_are_seconds_or_durations(text: str, seconds: float) -> None:
    assert parse_timeout(text) == seconds


@pytest.mark.parametrize("text", ["0", "-1", "nan", "soon"])
def test_refused_timeouts(text: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_timeout(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (90, "1m30s"), (28_800, "8h"), (93_784, "1d2h3m4s")]
)
def test_format_duration_is_exact_and_short(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
    if seconds:
        assert parse_duration(text) == timedelta(seconds=seconds)
