"""A real Prometheus server (Debian's `prometheus`) scrapes a running broker: the gRPC server's
calls and the broker's grants by state can be queried through Prometheus's HTTP API."""

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from accessbroker.v1 import broker_pb2 as pb
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import grant
from tests.ports import free_port
from tests.waiting import wait_for

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="Prometheus is not installed (apt-get install prometheus; .ci/run does in CI)",
)


@pytest.fixture
def prometheus(broker: BrokerProcess, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server scraping the broker every second; its HTTP API's base URL."""
    target = urllib.parse.urlsplit(broker.metrics_url)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "accessbroker",
                        "metrics_path": target.path,
                        "static_configs": [{"targets": [target.netloc]}],
                    }
                ],
            }
        )
    )
    address = f"127.0.0.1:{free_port()}"
    assert PROMETHEUS is not None
    server = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield f"http://{address}"
    server.terminate()
    server.wait(timeout=30)


def query(prometheus: str, promql: str) -> list[float]:
    """The values of an instant query's series; [] while Prometheus has none (or is starting)."""
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
    except OSError:
        return []
    return [float(series["value"][1]) for series in answer["data"]["result"]]


def test_prometheus_scrapes_the_grpc_calls_the_aws_calls_and_the_grants(
    broker: BrokerProcess, prometheus: str, instance_id: str, buckets: tuple[str, str]
) -> None:
    granted = grant(broker.stub, instance_id, buckets[0]).grant
    assert granted.state == pb.GRANT_STATE_ACTIVE

    handled = 'grpc_server_handled_total{grpc_method="GrantAccess",grpc_code="OK"}'
    assert wait_for(lambda: query(prometheus, handled), bool, what=f"{handled} in Prometheus") == [
        1.0
    ]
    puts = 'accessbroker_aws_calls_total{service="iam",action="PutRolePolicy",outcome="success"}'
    assert wait_for(lambda: query(prometheus, puts), bool, what=f"{puts} in Prometheus") == [1.0]
    converged = 'accessbroker_convergence_seconds_count{outcome="converged"}'
    assert wait_for(lambda: query(prometheus, converged), bool, what=converged) == [1.0]
    active = 'accessbroker_grants{state="active"}'
    assert wait_for(lambda: query(prometheus, active), bool, what=f"{active} in Prometheus") == [
        1.0
    ]
