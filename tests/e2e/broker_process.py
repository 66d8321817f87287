"""The broker as a real server process (`access-broker serve`), for end-to-end tests."""

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import deque
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from accessbroker.v1 import broker_pb2_grpc
from broker.sandbox import Emulator
from tests.waiting import wait_for

_SERVING_LINE = re.compile(r"accessbroker serving on (\S+)")
_METRICS_LINE = re.compile(r"^metrics: (http://\S+)")
_HEALTH_LINE = re.compile(r"^health \(plaintext\): (\S+)")
START_TIMEOUT = 60.0


class BrokerProcess:
    """Starts `access-broker serve` on a free port against the emulator, with its own database."""

    def __init__(self, emulator: Emulator, database_url: str, **env: str) -> None:
        self.emulator, self.database_url, self.extra_env = emulator, database_url, env
        self.process: subprocess.Popen[str] | None = None
        self.address = ""
        self.output: deque[str] = deque(maxlen=200)
        self._channel: grpc.Channel | None = None

    def start(self, tls: grpc.ChannelCredentials | None = None) -> None:
        """`tls`: how to reach a broker serving TLS (the CA; for mtls, a client certificate)."""
        admin = self.emulator.admin_credentials
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": admin.access_key_id,
            "AWS_SECRET_ACCESS_KEY": admin.secret_access_key,
            "AWS_DEFAULT_REGION": self.emulator.region,
            "BROKER_AWS_ENDPOINT_URL": self.emulator.endpoint_url,
            "BROKER_DATABASE_URL": self.database_url,
            "BROKER_LISTEN": "127.0.0.1:0",
            # Plain lines, which tests read; the tests of the JSON log ask for it.
            "BROKER_LOG_FORMAT": "text",
            # Many brokers run at once: each serves /metrics on a port of its own.
            "BROKER_METRICS_LISTEN": "127.0.0.1:0",
            "BROKER_PROPAGATION_TIMEOUT": "10",
            # Brokers with separate databases share the session's emulator and role path; each
            # would take the others' live roles for orphans. Tests of orphans turn it back on.
            "BROKER_REMOVE_ORPHANS": "false",
            # Tests of authentication set their own mode; the others call as anonymous.
            "BROKER_AUTH_MODE": "none",
            # `serve` requires one, as in production.
            "BROKER_PERMISSIONS_BOUNDARY_ARN": self.emulator.permissions_boundary(),
            **self.extra_env,
        }
        executable = Path(sys.executable).with_name("access-broker")
        self.process = subprocess.Popen(
            [str(executable), "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.address = self._wait_for_address()
        self._channel = (
            grpc.insecure_channel(self.address)
            if tls is None
            else grpc.secure_channel(self.address, tls)
        )
        self._wait_until_serving()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signals the server and returns its exit code."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.process is None:
            return 0
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    @property
    def channel(self) -> grpc.Channel:
        assert self._channel is not None, "start() the broker first"
        return self._channel

    @property
    def metrics_url(self) -> str:
        """Where the broker serves /metrics, as it said when it started."""
        return self._said(_METRICS_LINE, "metrics URL")

    def samples(self, prefix: str) -> list[Sample]:
        """The samples /metrics serves now whose names start with `prefix`."""
        with urllib.request.urlopen(self.metrics_url, timeout=30) as response:
            text = response.read().decode()
        return [
            sample
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name.startswith(prefix)
        ]

    def wait_for_chore(self, chore: str) -> None:
        """Returns once the sweep's chore has got through (each runs at start)."""
        wait_for(
            lambda: self.samples("accessbroker_sweep_last_success_timestamp_seconds"),
            lambda found: any(s.labels.get("chore") == chore for s in found),
            what=f"the sweep's {chore} chore to get through",
        )

    @property
    def health_address(self) -> str:
        """Where the broker serves its plaintext health port (BROKER_HEALTH_LISTEN)."""
        return self._said(_HEALTH_LINE, "health port")

    def _said(self, line: re.Pattern[str], what: str) -> str:
        found = [m.group(1) for m in map(line.search, list(self.output)) if m]
        assert found, f"the broker named no {what}:\n" + "".join(self.output)
        return found[0]

    @property
    def stub(self) -> broker_pb2_grpc.AccessBrokerStub:
        return broker_pb2_grpc.AccessBrokerStub(self.channel)

    def _wait_for_address(self) -> str:
        """Reads the server's output (kept for failure messages) until it names its address."""
        assert self.process is not None and self.process.stdout is not None
        stdout, address, settled = self.process.stdout, [], threading.Event()

        def read() -> None:
            for line in stdout:
                self.output.append(line)
                match = _SERVING_LINE.search(line)
                if match and not settled.is_set():
                    address.append(match.group(1))
                    settled.set()
            settled.set()  # the process ended without serving

        threading.Thread(target=read, name="broker-output", daemon=True).start()
        if not settled.wait(START_TIMEOUT) or not address:
            raise RuntimeError("the broker did not start:\n" + "".join(self.output))
        return address[0]

    def _wait_until_serving(self) -> None:
        health = health_pb2_grpc.HealthStub(self.channel)
        response = health.Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10, wait_for_ready=True
        )
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError(f"the broker is not serving: {response}")
