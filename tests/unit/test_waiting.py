"""The suite's one way of waiting for an event (tests/waiting.py)."""

import itertools

import pytest

from tests.waiting import NeverHappened, wait_for, wait_until


def test_returns_the_first_observation_that_holds() -> None:
    counter = itertools.count()

    seen = wait_for(lambda: next(counter), lambda n: n >= 3, what="the count reaching 3")

    assert seen == 3


def test_fails_naming_what_never_happened_and_what_was_last_seen() -> None:
    with pytest.raises(
        NeverHappened,
        match=r"the grant turning ACTIVE: not within 0\.05s; "
        r"last seen: 'PENDING'",
    ):
        wait_for(
            lambda: "PENDING",
            lambda s: s == "ACTIVE",
            what="the grant turning ACTIVE",
            timeout=0.05,
            interval=0.01,
        )


def test_a_condition_that_already_holds_returns_at_once() -> None:
    calls = itertools.count(1)

    wait_until(lambda: next(calls) == 1, what="the first check to hold")

    assert next(calls) == 2, "checked exactly once"
