"""The in-process instance locks: re-entrant, per instance, and forgetting idle instances."""

import threading

from broker.service.locks import ProcessInstanceLocks


def test_nested_holds_count_their_depth_and_release_the_entry() -> None:
    locks = ProcessInstanceLocks()

    with locks.hold_counting("i-1") as outer, locks.hold_counting("i-1") as inner:
        assert (outer, inner) == (1, 2)
        assert len(locks) == 1

    assert len(locks) == 0


def test_one_instance_waits_for_its_holder_while_another_proceeds() -> None:
    locks = ProcessInstanceLocks()
    entered = {"same": threading.Event(), "other": threading.Event()}

    def enter(instance_id: str, name: str) -> None:
        with locks.hold(instance_id):
            entered[name].set()

    with locks.hold("i-1"):
        same = threading.Thread(target=enter, args=("i-1", "same"))
        other = threading.Thread(target=enter, args=("i-2", "other"))
        same.start()
        other.start()
        assert entered["other"].wait(5)
        assert not entered["same"].wait(0.2)
    same.join(5)
    other.join(5)

    assert entered["same"].is_set()
    assert len(locks) == 0
