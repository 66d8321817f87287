"""Prometheus metrics: the gRPC server's calls under the go-grpc-prometheus names, and /metrics
serving them with the broker's own (grants by state, build), scraped over HTTP."""

import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.access import GrantState
from broker.entrypoints.grpc.metrics import ServerMetrics
from broker.entrypoints.metrics import start_metrics
from broker.service.ports import StateCount
from broker.settings import ConfigurationError
from tests.unit.entrypoints.readings import Readings
from tests.unit.entrypoints.serving import channel_to
from tests.unit.service.fakes import INSTANCE, World

SERVICE = "accessbroker.v1.AccessBroker"


def sample(registry: CollectorRegistry, name: str, method: str, **labels: str) -> float | None:
    unary = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": method}
    return registry.get_sample_value(name, {**unary, **labels})


def test_unary_calls_are_counted_by_method_and_code(w: World) -> None:
    registry = CollectorRegistry()
    with channel_to(w.bus, metrics=ServerMetrics(registry)) as channel:
        stub = broker_pb2_grpc.AccessBrokerStub(channel)
        request = pb.GrantAccessRequest(
            instance_id=INSTANCE, bucket="photos", access=pb.ACCESS_UPLOAD
        )
        granted = stub.GrantAccess(request).grant
        stub.GetGrant(pb.GetGrantRequest(grant_id=granted.grant_id))
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetGrant(pb.GetGrantRequest(grant_id="not-a-grant-id"))

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    handled = "grpc_server_handled_total"
    assert sample(registry, handled, "GetGrant", grpc_code="OK") == 1
    assert sample(registry, handled, "GetGrant", grpc_code="INVALID_ARGUMENT") == 1
    assert sample(registry, handled, "GrantAccess", grpc_code="OK") == 1
    assert sample(registry, "grpc_server_started_total", "GetGrant") == 2
    assert sample(registry, "grpc_server_msg_received_total", "GetGrant") == 2
    assert sample(registry, "grpc_server_msg_sent_total", "GetGrant") == 1  # a refusal sends none
    assert sample(registry, "grpc_server_handling_seconds_count", "GetGrant") == 2


def test_a_stream_counts_each_message_it_sends(w: World) -> None:
    registry = CollectorRegistry()
    metrics = ServerMetrics(registry)
    labels = {
        "grpc_type": "server_stream",
        "grpc_service": SERVICE,
        "grpc_method": "WatchAuditEvents",
    }
    with channel_to(w.bus, metrics=metrics) as channel:
        stub = broker_pb2_grpc.AccessBrokerStub(channel)
        stub.GrantAccess(
            pb.GrantAccessRequest(instance_id=INSTANCE, bucket="photos", access=pb.ACCESS_UPLOAD)
        )
        events = len(stub.ListAuditEvents(pb.ListAuditEventsRequest()).events)
        # Typed loosely: grpc-stubs types the call's iterator but not its cancel().
        stream: Any = stub.WatchAuditEvents(pb.WatchAuditEventsRequest(after_event_id=0))
        received = [next(stream) for _ in range(events)]
        stream.cancel()
        done = threading.Event()
        stream.add_done_callback(lambda _: done.set())
        assert done.wait(30)

    assert len(received) == events > 0
    assert registry.get_sample_value("grpc_server_started_total", labels) == 1
    assert registry.get_sample_value("grpc_server_msg_sent_total", labels) == events


def test_metrics_are_served_with_the_brokers_own() -> None:
    readings = Readings(
        grants={
            GrantState.ACTIVE: StateCount(2, datetime.now(UTC) - timedelta(days=3)),
            GrantState.PENDING: StateCount(1, datetime.now(UTC) - timedelta(minutes=10)),
        },
        calls={("iam", "PutRolePolicy", "success"): 3, ("iam", "GetRole", "throttled"): 1},
        retries={"throttling": 1, "connection": 0},
    )
    metrics = start_metrics("127.0.0.1:0", readings)
    assert metrics is not None
    try:
        metrics.kept.grpc.started.labels("unary", SERVICE, "GetGrant").inc()
        with urllib.request.urlopen(metrics.endpoint.url, timeout=30) as response:
            text = response.read().decode()
    finally:
        metrics.endpoint.stop()

    families = {f.name: f for f in text_string_to_metric_families(text)}
    grants = {s.labels["state"]: s.value for s in families["accessbroker_grants"].samples}
    assert grants == {
        state.value: readings.grants[state].count if state in readings.grants else 0
        for state in GrantState
    }
    waited = families["accessbroker_oldest_grant_age_seconds"].samples
    ages = {s.labels["state"]: s.value for s in waited}
    assert set(ages) == {"pending", "revoking"} and ages["revoking"] == 0
    assert 600 <= ages["pending"] < 900  # ten minutes, and the time the scrape took
    calls = {
        (s.labels["service"], s.labels["action"], s.labels["outcome"]): s.value
        for s in families["accessbroker_aws_calls"].samples
        if s.name.endswith("_total")
    }
    assert calls == readings.calls
    retries = {
        s.labels["fault"]: s.value
        for s in families["accessbroker_aws_retries"].samples
        if s.name.endswith("_total")
    }
    assert retries == readings.retries
    [build] = families["accessbroker_build_info"].samples
    assert build.labels["version"]
    [started] = families["grpc_server_started"].samples
    assert (started.labels["grpc_method"], started.value) == ("GetGrant", 1)


def test_off_serves_nothing_and_a_taken_address_is_refused_saying_so() -> None:
    assert start_metrics("off", Readings()) is None
    first = start_metrics("127.0.0.1:0", Readings())
    assert first is not None
    taken = first.endpoint.url.split("/")[2]
    try:
        with pytest.raises(
            ConfigurationError, match=f"BROKER_METRICS_LISTEN: cannot serve on {taken}"
        ):
            start_metrics(taken, Readings())
    finally:
        first.endpoint.stop()
