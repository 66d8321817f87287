"""The container image (deploy/container) builds with podman from a base made of Debian's
packages (no registry here), and runs as promised: `--version` answers, the broker serves its
health SERVING on the plaintext health port with a read-only root filesystem, as a user other
than root."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker.release import release
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
MISSING = [tool for tool in ("podman", "mmdebstrap") if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not installed (apt-get install podman mmdebstrap runc; "
    ".ci/run does in CI)",
)
BASE = "localhost/debian-python:bookworm"
IMAGE = "localhost/accessbroker:test"
BOUNDARY = "arn:aws:iam::123456789012:policy/accessbroker-boundary"
# What podman needs on these machines (../shared/TOOLS-FACTS.md): runc, cgroupfs, lower ulimits.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


@dataclass(frozen=True)
class Podman:
    """podman on a store of the test's own."""

    flags: tuple[str, ...]
    env: dict[str, str]

    @property
    def command(self) -> str:
        return " ".join(("podman", *self.flags))

    def __call__(self, *arguments: str, timeout: float = 300) -> str:
        done = self.ran(*arguments, timeout=timeout)
        assert done.returncode == 0, f"podman {' '.join(arguments)}: {done.stderr}"
        return done.stdout.strip()

    def ran(self, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """podman's outcome, whatever its exit status."""
        return subprocess.run(
            ["podman", *self.flags, *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    store = tmp_path_factory.mktemp("podman")
    (store / "containers.conf").write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(store / "containers.conf")}
    # podman refuses a run root path longer than 50 characters, which pytest's are.
    run = tempfile.mkdtemp(prefix="podman-", dir="/tmp")
    yield Podman(("--root", str(store / "root"), "--runroot", run), env)
    shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(store, ignore_errors=True)


@pytest.fixture(scope="module")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The broker's image, built by deploy/container/build on a base of Debian's packages."""
    base = tmp_path_factory.mktemp("base") / "base.tar"
    subprocess.run(
        [
            "mmdebstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(base),
        ],
        capture_output=True,
        timeout=600,
        check=True,
    )
    podman("import", str(base), BASE)
    built = subprocess.run(
        [str(ROOT / "deploy" / "container" / "build"), "--base", BASE, "--tag", IMAGE],
        env={**podman.env, "CONTAINER_TOOL": podman.command},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return IMAGE


def test_the_image_says_its_version(podman: Podman, image: str) -> None:
    assert podman("run", "--rm", image, "--version") == f"access-broker {release()}"


def test_the_image_holds_the_web_page_which_refuses_to_start_unconfigured(
    podman: Podman, image: str
) -> None:
    ran = podman.ran("run", "--rm", "--entrypoint", "accessbroker-web", image)

    assert ran.returncode == 2
    assert "ACCESSBROKER_WEB_TRUSTED_PROXIES must name the proxy's networks" in ran.stderr


def test_the_image_serves_health_read_only_and_not_as_root(podman: Podman, image: str) -> None:
    port = free_port()
    container = podman(
        "run", "-d", "--read-only", "--tmpfs", "/tmp",
        "-e", "BROKER_DATABASE_URL=sqlite:////tmp/broker.db",
        "-e", "BROKER_AUTH_MODE=none",
        "-e", "BROKER_REMOVE_ORPHANS=false",
        "-e", "AWS_DEFAULT_REGION=us-east-1",
        # Required outside the sandbox; AWS does not answer in here, so the check at start
        # is logged as not done and the broker serves.
        "-e", f"BROKER_PERMISSIONS_BOUNDARY_ARN={BOUNDARY}",
        "-e", "BROKER_AWS_ENDPOINT_URL=http://127.0.0.1:9",
        "-e", "BROKER_AWS_CONNECTION_BUDGET=0",
        "-e", "AWS_ACCESS_KEY_ID=unused", "-e", "AWS_SECRET_ACCESS_KEY=unused",
        "-p", f"127.0.0.1:{port}:50052",
        image, "serve",
    )  # fmt: skip
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            check = health_pb2.HealthCheckRequest(service="")
            answer = health_pb2_grpc.HealthStub(channel).Check(
                check, timeout=60, wait_for_ready=True
            )
        user = podman("exec", container, "id", "-u")
        with pytest.raises(AssertionError, match="Read-only file system"):
            podman("exec", container, "touch", "/opt/accessbroker/written")
    finally:
        podman("rm", "-f", container)

    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert user == "10001"
