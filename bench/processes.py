"""The benchmark's three servers, each a process of its own so that none shares the client's
(or another's) interpreter lock: AWS (the emulator behind the counting proxy), the broker
(`access-broker serve`, the real CLI) and the echo server. Each ends when its context ends."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.counting_proxy import CONTROL_PATH

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90.0
_SERVING = re.compile(r"accessbroker serving on (\S+)")
# The sweeps would add their own AWS calls to whatever is being counted: each runs once when the
# broker starts (before anything is measured) and then not again during a run.
QUIET_SWEEPS = {
    "BROKER_SWEEP_INTERVAL_SECONDS": "86400",
    "BROKER_DRIFT_SWEEP_INTERVAL_SECONDS": "86400",
    "BROKER_ORPHAN_SWEEP_INTERVAL_SECONDS": "86400",
}


@dataclass(frozen=True)
class Aws:
    emulator_url: str
    proxy_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    boundary_arn: str
    pid: int

    def calls(self, since: int = 0) -> tuple[int, list[tuple[str, str, int]]]:
        """How many AWS calls the proxy has forwarded so far, and those from the `since`-th on."""
        url = f"{self.proxy_url}{CONTROL_PATH}?since={since}"
        with urllib.request.urlopen(url, timeout=30) as response:
            answer = json.load(response)
        return int(answer["total"]), [(s, a, int(status)) for s, a, status in answer["calls"]]


@dataclass(frozen=True)
class Broker:
    address: str
    pid: int
    log: Path

    def peak_rss_mb(self) -> float:
        """The process's peak resident set size (VmHWM) so far, in MiB; NaN if unreadable."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return float("nan")
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else float("nan")


@contextmanager
def aws_side(scratch: Path) -> Iterator[Aws]:
    with _child([sys.executable, "-m", "bench.aws_side"], scratch / "aws.log") as process:
        line = _first_line(process, scratch / "aws.log")
        yield Aws(**json.loads(line), pid=process.pid)


@contextmanager
def echo_server(scratch: Path) -> Iterator[str]:
    with _child([sys.executable, "-m", "bench.echo_server"], scratch / "echo.log") as process:
        yield _first_line(process, scratch / "echo.log").rsplit(" ", 1)[-1]


@contextmanager
def broker_server(aws: Aws, scratch: Path, extra_env: Mapping[str, str]) -> Iterator[Broker]:
    """`access-broker serve` on a throwaway SQLite database, authentication off (every caller
    is an admin), its AWS calls going through the counting proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "AWS_"))}
    # The broker measured is the one in this checkout, whichever the virtualenv installed.
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env |= {
        "PYTHONPATH": path,
        "AWS_ACCESS_KEY_ID": aws.access_key_id,
        "AWS_SECRET_ACCESS_KEY": aws.secret_access_key,
        "AWS_DEFAULT_REGION": aws.region,
        "BROKER_AWS_ENDPOINT_URL": aws.proxy_url,
        "BROKER_DATABASE_URL": f"sqlite:///{scratch / 'broker.db'}",
        "BROKER_LISTEN": "127.0.0.1:0",
        "BROKER_METRICS_LISTEN": "127.0.0.1:0",
        "BROKER_AUTH_MODE": "none",
        "BROKER_PERMISSIONS_BOUNDARY_ARN": aws.boundary_arn,
        "BROKER_PROPAGATION_TIMEOUT": "30",
        "BROKER_ROLE_PATH": f"/accessbroker/bench-{uuid.uuid4().hex[:8]}/",
        **QUIET_SWEEPS,
        **extra_env,
    }
    executable = Path(sys.executable).with_name("access-broker")
    log = scratch / "broker.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(executable), "serve"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        address = _wait_for(process, log, _SERVING)
        yield Broker(address, process.pid, log)
    finally:
        _stop(process, signal.SIGTERM)


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def _child(command: list[str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """A child that serves until its standard input closes; its standard error goes to `log`."""
    with log.open("w") as errors:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        yield process
    finally:
        _stop(process, None)


def _first_line(process: subprocess.Popen[str], log: Path) -> str:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line:
        raise RuntimeError(f"{process.args!r} did not start:\n{log_tail(log)}")
    return line


def _wait_for(process: subprocess.Popen[str], log: Path, pattern: re.Pattern[str]) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = pattern.search(log.read_text(errors="replace"))
        if match:
            return match.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"the broker did not start:\n{log_tail(log)}")


def _stop(process: subprocess.Popen[str], sig: int | None) -> None:
    """Closes its standard input (or sends `sig`), waits, and kills it if it lingers."""
    stdin: IO[str] | None = process.stdin
    if stdin is not None:
        stdin.close()
    if sig is not None and process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
