"""`make run` (deploy/sandbox/run): the sandbox broker and the web page next to it, which a
newcomer opens to pick an identity; both stop together."""

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.ports import free_port
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def test_the_page_is_served_next_to_the_sandbox_broker_and_both_stop_together() -> None:
    web = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "BIN": str(Path(sys.executable).parent),
        "BROKER_LISTEN": f"127.0.0.1:{free_port()}",
        "BROKER_METRICS_LISTEN": "127.0.0.1:0",
        "ACCESSBROKER_WEB_LISTEN": web,
    }
    run = subprocess.Popen(
        [str(REPO / "deploy" / "sandbox" / "run")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert run.stdout is not None
        said = wait_for(run.stdout.readline, lambda line: "web page:" in line, what="the URL")
        page = wait_for(
            lambda: _get(f"http://{web}/dev/login"), lambda got: got is not None, what="the page"
        )
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(timeout=60)

    assert f"http://{web}" in said
    assert page is not None
    assert all(f"sandbox-{who}" in page for who in ("requester", "approver", "admin"))


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return str(answer.read().decode())
    except OSError:
        return None
