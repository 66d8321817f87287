"""The SDK as a service gets it: the wheel `make sdk` builds, installed in a clean virtualenv."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.e2e.broker_process import BrokerProcess

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SHIPPED = {
    "accessbroker/__init__.py",
    "accessbroker/client.py",
    "accessbroker/errors.py",
    "accessbroker/models.py",
    "accessbroker/py.typed",
    "accessbroker/v1/__init__.py",
    "accessbroker/v1/broker_pb2.py",
    "accessbroker/v1/broker_pb2.pyi",
    "accessbroker/v1/broker_pb2_grpc.py",
    "accessbroker/v1/broker_pb2_grpc.pyi",
}
USE_SDK = """
import json, os
import accessbroker
from accessbroker import Access, BrokerClient, GrantState, errors

with BrokerClient() as client:  # the address comes from BROKER_ADDRESS
    result = client.grant(os.environ["INSTANCE"], os.environ["BUCKET"], "upload", prefix="w/")
    fetched = client.get(result.grant.grant_id)
    revoked = client.revoke(result.grant.grant_id)
    try:
        client.get("00000000-0000-4000-8000-000000000000")
        refusal = "none"
    except errors.NotFound as error:
        refusal = type(error).__name__
print(json.dumps({
    "module": accessbroker.__file__,
    "granted": result.grant.grant_id,
    "fetched": fetched.grant_id,
    "access": fetched.access is Access.UPLOAD,
    "states": [result.grant.state.value, fetched.state.value, revoked.state.value],
    "revoked_is_enum": revoked.state is GrantState.REVOKED,
    "policy_type": type(result.policy).__name__,
    "refusal": refusal,
}))
"""
TYPED_USE = """
from accessbroker import BrokerClient, Grant, GrantState

def state_of(client: BrokerClient, grant_id: str) -> GrantState:
    grant: Grant = client.get(grant_id)
    return grant.state
"""
MISTYPED_USE = """
from accessbroker import BrokerClient

def state_of(client: BrokerClient, grant_id: str) -> int:
    return client.get(grant_id).state
"""


def build_wheel(into: Path) -> Path:
    """Runs the command of `make sdk` on a copy of clients/python (no stale build/ leaks in)."""
    source = into / "source"
    shutil.copytree(
        ROOT / "clients" / "python",
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", into, source],
        check=True,
        timeout=300,
    )
    (wheel,) = into.glob("accessbroker_client-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def clean_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv (no system site-packages) with only the wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("client") / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel],
        check=True,
        timeout=600,
        env=_without_project_paths(),
    )
    return venv


def _without_project_paths() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_the_wheel_ships_the_generated_stubs_and_py_typed(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requirements = archive.read(metadata).decode()

    assert names >= SHIPPED
    assert not any(n.startswith("broker/") for n in names)
    assert "Requires-Dist: grpcio" in requirements
    assert "Requires-Dist: grpcio-status" in requirements
    assert "Requires-Dist: protobuf" in requirements


def _generated_versions() -> dict[str, Version]:
    """The grpcio and protobuf runtimes the generated stubs refuse to import without."""
    stubs = ROOT / "clients" / "python" / "accessbroker" / "v1"
    grpc_stub = (stubs / "broker_pb2_grpc.py").read_text()
    messages = (stubs / "broker_pb2.py").read_text()
    grpc_version = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", grpc_stub)
    protobuf_version = re.search(r"Protobuf Python Version: ([\d.]+)", messages)
    assert grpc_version and protobuf_version, "the stubs no longer name their versions"
    return {
        "grpcio": Version(grpc_version.group(1)),
        "protobuf": Version(protobuf_version.group(1)),
    }


def test_the_declared_dependencies_can_import_the_generated_stubs(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    requirements = [
        Requirement(line.removeprefix("Requires-Dist: "))
        for line in lines
        if line.startswith("Requires-Dist: ")
    ]
    declared = {r.name: r.specifier for r in requirements}

    for name, generated in _generated_versions().items():
        floors = [Version(s.version) for s in declared[name] if s.operator in (">=", "==", "~=")]
        assert floors, f"{name} has no lower bound"
        assert max(floors) >= generated, f"{name}{declared[name]} admits versions < {generated}"


def test_a_service_uses_the_installed_wheel_against_the_broker(
    clean_venv: Path,
    broker: BrokerProcess,
    instance_id: str,
    buckets: tuple[str, str],
    tmp_path: Path,
) -> None:
    script = tmp_path / "use_sdk.py"
    script.write_text(USE_SDK)
    env = _without_project_paths() | {
        "BROKER_ADDRESS": broker.address,
        "INSTANCE": instance_id,
        "BUCKET": buckets[0],
    }

    run = subprocess.run(
        [clean_venv / "bin" / "python", script],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr
    output = json.loads(run.stdout)
    assert Path(output["module"]).is_relative_to(clean_venv)
    assert output["granted"] == output["fetched"]
    assert output["states"] == ["active", "active", "revoked"]
    assert output["access"] is True
    assert output["revoked_is_enum"] is True
    assert output["policy_type"] == "dict"
    assert output["refusal"] == "NotFound"


def test_the_installed_package_is_typed_for_mypy_strict(clean_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(TYPED_USE)
    (tmp_path / "bad.py").write_text(MISTYPED_USE)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")

    def mypy(snippet: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                VENV_BIN / "mypy",
                "--strict",
                "--config-file",
                tmp_path / "mypy.ini",
                "--cache-dir",
                tmp_path / ".mypy_cache",
                "--python-executable",
                clean_venv / "bin" / "python",
                snippet,
            ],
            check=False,
            cwd=tmp_path,
            env=_without_project_paths() | {"MYPYPATH": ""},
            capture_output=True,
            text=True,
            timeout=300,
        )

    good, bad = mypy("good.py"), mypy("bad.py")

    assert good.returncode == 0, good.stdout
    assert bad.returncode == 1, bad.stdout
    assert 'Incompatible return value type (got "GrantState", expected "int")' in bad.stdout
