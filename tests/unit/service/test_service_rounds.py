"""Convergence rounds (group commit): a request that joins while a round runs is carried by the
next round, which one of the waiting requests leads; each hears how its own round ended."""

import threading
from collections.abc import Callable

import pytest

from broker.domain.errors import AwsUnavailable, DeadlineExceeded
from broker.service import deadlines
from broker.service.convergence import ConvergenceRounds
from tests.waiting import wait_until

INSTANCE = "i-0123456789abcdef0"


class HeldRound:
    """A convergence that runs until the test lets it finish, counting the rounds run."""

    def __init__(self, outcome: BaseException | None = None) -> None:
        self.runs = 0
        self.running, self.finish = threading.Event(), threading.Event()
        self._outcome = outcome

    def __call__(self) -> None:
        self.runs += 1
        self.running.set()
        self.finish.wait()
        if self._outcome is not None:
            raise self._outcome


def joined(
    rounds: ConvergenceRounds, run: Callable[[], None]
) -> tuple[threading.Thread, list[object]]:
    """A thread joining a round of INSTANCE; its list gets "done", or the error it raised."""
    heard: list[object] = []

    def join() -> None:
        try:
            rounds.join(INSTANCE, run)
            heard.append("done")
        except Exception as error:
            heard.append(error)

    thread = threading.Thread(target=join)
    thread.start()
    return thread, heard


def test_requests_joining_during_a_round_are_carried_together_by_the_next() -> None:
    rounds, convergence = ConvergenceRounds(), HeldRound()
    first, first_heard = joined(rounds, convergence)
    wait_until(convergence.running.is_set, what="the first round running")
    later = [joined(rounds, convergence) for _ in range(5)]
    wait_until(lambda: rounds.waiting(INSTANCE) == 6, what="five requests waiting")

    convergence.finish.set()
    for thread, _ in [(first, first_heard), *later]:
        thread.join()

    assert convergence.runs == 2
    assert [first_heard, *(heard for _, heard in later)] == [["done"]] * 6
    assert rounds.waiting(INSTANCE) == 0


def test_every_request_of_a_round_hears_what_stopped_it() -> None:
    stopped = AwsUnavailable("IAM is throttling")
    rounds, convergence = ConvergenceRounds(), HeldRound(outcome=stopped)
    threads = [joined(rounds, convergence) for _ in range(3)]
    wait_until(lambda: rounds.waiting(INSTANCE) == 3, what="three requests joined")

    convergence.finish.set()
    for thread, _ in threads:
        thread.join()

    assert [heard for _, heard in threads] == [[stopped]] * 3


def test_a_request_whose_deadline_passes_waiting_stops_without_stopping_the_round() -> None:
    rounds, convergence = ConvergenceRounds(), HeldRound()
    leader, leader_heard = joined(rounds, convergence)
    wait_until(convergence.running.is_set, what="a round running")

    with deadlines.deadline_in(0.0), pytest.raises(DeadlineExceeded):
        rounds.join(INSTANCE, convergence)

    convergence.finish.set()
    leader.join()
    assert (convergence.runs, leader_heard) == (1, ["done"])
    assert rounds.waiting(INSTANCE) == 0
