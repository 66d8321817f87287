"""Evidence that a thread is blocked (tests/blocking.py), for tests of locks."""

import threading

import pytest

from tests.blocking import blocked_at
from tests.waiting import wait_until


def take(lock: threading.Lock, taken: threading.Event) -> None:
    with lock:
        taken.set()


def test_a_thread_is_blocked_at_a_taken_lock_and_not_once_it_has_it() -> None:
    lock, taken = threading.Lock(), threading.Event()
    taker = threading.Thread(target=take, args=(lock, taken))
    assert not blocked_at(taker, take, "with lock:"), "not started"

    with lock:
        taker.start()
        wait_until(lambda: blocked_at(taker, take, "with lock:"), what="the taker blocked")
        assert not taken.is_set()
    wait_until(taken.is_set, what="the taker got the lock")
    taker.join()

    assert not blocked_at(taker, take, "with lock:"), "finished"


def test_a_statement_that_is_not_one_line_of_the_function_is_an_error() -> None:
    with pytest.raises(ValueError, match="is not exactly one line of take"):
        blocked_at(threading.current_thread(), take, "with other_lock:")
