"""The in-process instance locks: re-entrant, per instance, and forgetting idle instances."""

import threading

from broker.adapters.locks import ProcessInstanceLocks
from tests.blocking import blocked_at
from tests.waiting import wait_until

# The statement at which a thread waits for an instance lock that another thread holds.
LOCKED = "with entry.lock:"


def test_nested_holds_count_their_depth_and_release_the_entry() -> None:
    locks = ProcessInstanceLocks()

    with locks.hold_counting("i-1") as outer, locks.hold_counting("i-1") as inner:
        assert (outer, inner) == (1, 2)
        assert len(locks) == 1

    assert len(locks) == 0


def test_one_instance_waits_for_its_holder_while_another_proceeds() -> None:
    locks = ProcessInstanceLocks()
    happened: list[str] = []

    def enter(instance_id: str, name: str) -> None:
        with locks.hold(instance_id):
            happened.append(f"{name} entered")

    same = threading.Thread(target=enter, args=("i-1", "same"))
    other = threading.Thread(target=enter, args=("i-2", "other"))
    with locks.hold("i-1"):
        same.start()
        other.start()
        wait_until(lambda: "other entered" in happened, what="another instance's holder entered")
        # Seen blocked on the lock (or, if the lock failed to serialize, already in).
        wait_until(
            lambda: (
                "same entered" in happened
                or blocked_at(same, ProcessInstanceLocks.hold_counting, LOCKED)
            ),
            what="the same instance's second holder blocked on its lock",
        )
        happened.append("first holder leaving")
    wait_until(lambda: "same entered" in happened, what="the second holder entered")
    same.join()
    other.join()

    assert happened == ["other entered", "first holder leaving", "same entered"]
    assert len(locks) == 0
