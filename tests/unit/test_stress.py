"""`make test-stress`: the command runs beside busy processes, which end with it."""

import multiprocessing
import sys

from tests.stress import run_loaded

# Run as the command: exits 0 once a sibling (a hog, a child of the same parent) has used a
# tenth of a second of CPU; 1 at once without siblings, or if none is busy within ten seconds.
SIBLING_IS_BUSY = """
import os, sys, time
parent, me = os.getppid(), os.getpid()
def cpu_ticks(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[11])
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    siblings = [int(p) for p in open(f"/proc/{parent}/task/{parent}/children").read().split()]
    siblings.remove(me)
    if not siblings:
        sys.exit(1)
    if any(cpu_ticks(pid) >= 10 for pid in siblings):
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
"""


def test_the_commands_exit_code_is_returned_and_no_hog_outlives_it() -> None:
    assert run_loaded(["true"], hogs=2) == 0
    assert run_loaded(["sh", "-c", "exit 3"], hogs=1) == 3
    assert multiprocessing.active_children() == []


def test_the_hogs_burn_cpu_while_the_command_runs() -> None:
    assert run_loaded([sys.executable, "-c", SIBLING_IS_BUSY], hogs=1) == 0
    assert run_loaded([sys.executable, "-c", SIBLING_IS_BUSY], hogs=0) == 1
