"""`make bench`'s own logic: percentiles, which AWS actions write, goals, the counting proxy and
the closed loop. Nothing here is timed: the benchmark's numbers are its output, not tests."""

import asyncio
import http.client
import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import grpc.aio
import pytest

import bench.load
from bench import goals
from bench.counting_proxy import CONTROL_PATH, CountingProxy
from bench.load import closed_loop
from bench.measure import AwsTally, Latencies, is_write, percentile, ratio
from bench.report import short, table
from tests.faults.aws_errors import MUTATING_ACTIONS

# Percentiles ---------------------------------------------------------------------------------


def test_the_nearest_rank_percentile_is_a_value_of_the_sample() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 1..100, unordered
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0.5) == 1


def test_a_small_sample_has_its_maximum_as_p99() -> None:
    assert percentile([3.0, 1.0, 2.0], 99) == 3
    assert percentile([3.0, 1.0, 2.0], 50) == 2
    assert percentile([7.0], 50) == 7


def test_no_values_have_no_percentile_and_a_percentage_out_of_range_is_refused() -> None:
    assert math.isnan(percentile([], 50))
    for bad in (0, -1, 101):
        with pytest.raises(ValueError, match="not in"):
            percentile([1.0], bad)


def test_latencies_add_up_over_slices() -> None:
    total = Latencies()
    total.add(Latencies([0.1, 0.2], elapsed=1.0))
    total.add(Latencies([0.3], elapsed=0.5, errors=2, first_error="UNAVAILABLE: gone"))
    total.add(Latencies([], elapsed=0.5, errors=1, first_error="INTERNAL: later"))
    assert total.calls == 3
    assert total.rate == 1.5
    assert total.errors == 3
    assert total.first_error == "UNAVAILABLE: gone"
    assert math.isnan(Latencies().rate)


def test_a_ratio_with_an_unknown_or_zero_side_is_unknown() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(math.nan, 1.0))
    assert math.isnan(ratio(1.0, math.nan))


# Reads and writes ----------------------------------------------------------------------------


def test_every_action_the_fault_proxy_knows_as_mutating_is_a_write() -> None:
    assert all(is_write(action) for action in MUTATING_ACTIONS)


@pytest.mark.parametrize(
    "action",
    [
        "TagRole",
        "AttachRolePolicy",
        "DetachRolePolicy",
        "UpdateAssumeRolePolicy",
        "ReplaceIamInstanceProfileAssociation",
        "POST",
        "PUT",
        "DELETE",
    ],
)
def test_actions_the_broker_may_start_using_count_as_writes(action: str) -> None:
    assert is_write(action)


@pytest.mark.parametrize(
    "action",
    [
        "GetRole",
        "GetAccountAuthorizationDetails",
        "ListRoles",
        "ListInstanceProfiles",
        "DescribeInstances",
        "DescribeIamInstanceProfileAssociations",
        "GET",
        "HEAD",
    ],
)
def test_gets_lists_and_describes_are_reads(action: str) -> None:
    assert not is_write(action)


def test_a_tally_counts_calls_writes_reads_and_one_action() -> None:
    tally = AwsTally.of(["GetRole", "PutRolePolicy", "GetRole", "CreateRole", "ListRoles"])
    assert (tally.calls, tally.writes, tally.reads) == (5, 2, 3)
    assert tally.count("PutRolePolicy") == 1
    assert tally.count("DeleteRole") == 0
    assert tally.breakdown() == "GetRole 2, CreateRole 1, ListRoles 1, PutRolePolicy 1"
    assert AwsTally.of([]).breakdown() == "none"


# Goals ---------------------------------------------------------------------------------------


def test_goals_judge_at_most_at_least_and_unknown() -> None:
    assert goals.FIRST_GRANT_CALLS.verdict(8) == goals.MET
    assert goals.FIRST_GRANT_CALLS.verdict(12) == goals.NOT_MET
    assert goals.GET_GRANT_THROUGHPUT.verdict(0.5) == goals.MET
    assert goals.GET_GRANT_THROUGHPUT.verdict(0.2) == goals.NOT_MET
    assert goals.REPEATED_GRANT_WRITES.verdict(0) == goals.MET
    assert goals.REPEATED_GRANT_WRITES.verdict(0.01) == goals.NOT_MET
    assert goals.BURST_SECONDS.verdict(math.nan) == goals.UNKNOWN


def test_a_small_drift_pass_may_cost_what_30_instances_may() -> None:
    assert goals.drift_goals(5, calls=9, seconds=1) == [(goals.DRIFT_CALLS_UP_TO_30, 9)]
    assert goals.drift_goals(30, calls=210, seconds=1) == [(goals.DRIFT_CALLS_UP_TO_30, 210)]


def test_a_large_drift_pass_is_judged_per_instance_in_all_and_in_time() -> None:
    assert goals.drift_goals(100, calls=50, seconds=2) == [(goals.DRIFT_CALLS_PER_INSTANCE, 0.5)]
    assert goals.drift_goals(300, calls=30, seconds=2) == [
        (goals.DRIFT_CALLS_PER_INSTANCE, 0.1),
        (goals.DRIFT_SECONDS_AT_300, 2),
    ]
    judged = goals.drift_goals(1000, calls=40, seconds=5)
    assert [goal for goal, _ in judged] == [
        goals.DRIFT_CALLS_PER_INSTANCE,
        goals.DRIFT_CALLS_AT_1000,
        goals.DRIFT_SECONDS_AT_300,
    ]
    assert all(goal.verdict(value) == goals.MET for goal, value in judged)


# The report ----------------------------------------------------------------------------------


def test_numbers_are_shown_as_short_as_they_can_be() -> None:
    assert [short(v) for v in (0.0, 12.0, 1500.0, 0.213, 3.456, 12.34, math.nan)] == [
        "0",
        "12",
        "1,500",
        "0.21",
        "3.46",
        "12.3",
        "-",
    ]


def test_a_table_pads_numbers_right_and_names_goals_and_verdicts_left() -> None:
    lines = table(
        ["what", "calls", "goal", "measured", "verdict"],
        [["first grant", "12", "<= 8 calls", "12", "NOT MET"], ["x", "7", "-", "", ""]],
    )
    assert lines == [
        "what         calls  goal        measured  verdict",
        "-----------  -----  ----------  --------  -------",
        "first grant     12  <= 8 calls        12  NOT MET",
        "x                7  -",
    ]


# The counting proxy --------------------------------------------------------------------------


class _Upstream(BaseHTTPRequestHandler):
    """Answers each POST with its own body, and a status the body may ask for."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(409 if b"Conflict" in body else 200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seen-Host", self.headers.get("Host", ""))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()


def _post(connection: http.client.HTTPConnection, body: str) -> tuple[int, bytes, str]:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Authorization": "AWS4-HMAC-SHA256 Credential=KEY/20250101/us-east-1/iam/aws4_request",
        "Host": "iam.example",
    }
    connection.request("POST", "/", body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read(), response.getheader("X-Seen-Host") or ""


def test_the_proxy_forwards_unchanged_and_counts_each_call_in_order(upstream: str) -> None:
    with CountingProxy(upstream) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            # Several calls on one keep-alive connection, as botocore makes them.
            assert _post(connection, "Action=GetRole&RoleName=r") == (
                200,
                b"Action=GetRole&RoleName=r",
                "iam.example",
            )
            assert _post(connection, "Action=PutRolePolicy&Conflict=1")[0] == 409
            connection.request("GET", f"{CONTROL_PATH}?since=1")
            counted = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        assert counted == {"total": 2, "calls": [["iam", "PutRolePolicy", 409]]}
        assert proxy.calls() == (2, [("iam", "GetRole", 200), ("iam", "PutRolePolicy", 409)])


# The closed loop -----------------------------------------------------------------------------


class _Clock:
    """A perf_counter that moves a millisecond each time it is read: the loop's deadline comes
    after a number of calls that does not depend on the machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.001
        return self.now


def test_the_loop_keeps_at_most_its_calls_in_flight_and_counts_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench.load, "time", _Clock())
    in_flight, most, calls = 0, 0, 0

    async def method(request: bytes, timeout: float) -> bytes:
        nonlocal in_flight, most, calls
        in_flight += 1
        most = max(most, in_flight)
        calls += 1
        await asyncio.sleep(0)
        in_flight -= 1
        if calls % 3 == 0:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone", ""
            )
        return request

    result = asyncio.run(closed_loop(method, b"x", in_flight=4, seconds=0.2, timeout=1))
    assert most <= 4
    assert result.calls + result.errors == calls
    assert result.errors > 0
    assert result.first_error == "UNAVAILABLE: gone"
    assert result.elapsed > 0
