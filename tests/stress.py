"""Runs a command while every core is kept busy: the suite must hold on a loaded machine.

    python -m tests.stress [--hogs N] -- make test

Each hog is a process spinning on the CPU; they stop when the command ends, and on their own
should this process die without stopping them (they watch their parent). Exits with the
command's exit code and prints its wall time.
"""

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Sequence


def _spin(parent: int) -> None:
    """Burns CPU until the parent is gone (a hog outliving a killed run would skew the next)."""
    while os.getppid() == parent:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            pass


def run_loaded(command: Sequence[str], hogs: int) -> int:
    workers = [
        multiprocessing.Process(target=_spin, args=(os.getpid(),), daemon=True) for _ in range(hogs)
    ]
    for worker in workers:
        worker.start()
    started = time.monotonic()
    try:
        code = subprocess.call(list(command))
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()
    minutes = (time.monotonic() - started) / 60
    print(
        f"stress: `{' '.join(command)}` exited {code} after {minutes:.1f} min "
        f"beside {hogs} CPU hogs",
        file=sys.stderr,
    )
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hogs",
        type=int,
        default=os.cpu_count() or 2,
        help="busy processes to run beside the command (default: one per core)",
    )
    parser.add_argument("command", nargs="+", help="the command to run under load")
    args = parser.parse_args(argv)
    return run_loaded(args.command, args.hogs)


if __name__ == "__main__":
    sys.exit(main())
