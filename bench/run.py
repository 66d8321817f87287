"""`make bench`: the broker beside a bare grpcio echo server, and its AWS calls per operation.

Starts three processes on loopback: AWS (the sandbox's emulator behind a counting proxy), the
broker (`access-broker serve`, SQLite, authentication off) and an echo server. Then:

1. drives GetGrant, ListGrants, DescribeInstanceAccess and a repeated identical GrantAccess
   with the same asyncio client at --in-flight calls in flight, each side by side with the echo
   server in alternating slices, and reports calls/s and p50/p99 as ratios to echo;
2. counts the AWS calls (and writes) of: the first grant on an instance, a grant on another
   bucket, revoking one of two grants, revoking the last, --burst concurrent grants on one
   instance (and their revocation), and a drift pass (Reconcile, every instance) over
   --drift-instances instances with one grant each;
3. prints one table, each number beside its goal from issue 12.

    .venv/bin/python -m bench --slice-seconds 2 --drift-instances 100
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import grpc.aio
from google.protobuf.message import Message

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from bench import goals
from bench.load import raw_method, side_by_side
from bench.phases import (
    RECONCILE_TIMEOUT,
    RPC_TIMEOUT,
    Boundary,
    World,
    calls_of,
    grant_request,
    measured,
    progress,
    state_note,
)
from bench.processes import ROOT, Aws, Broker, aws_side, broker_server, echo_server, log_tail
from bench.report import AwsRow, RpcRow, aws_table, breakdown, rpc_table
from bench.scale import SCALE_ENV, ScaleOptions, scale

if TYPE_CHECKING:
    from accessbroker.v1.broker_pb2_grpc import AccessBrokerAsyncStub

SERVICE = pb.DESCRIPTOR.services_by_name["AccessBroker"].full_name


@dataclass(frozen=True)
class Options:
    in_flight: int = 32
    slices: int = 4
    slice_seconds: float = 1.0
    warmup_seconds: float = 0.5
    list_size: int = 5
    burst: int = 20
    drift_instances: int = 30
    setup_concurrency: int = 8
    quiet_seconds: float = 0.5
    scale_instances: int = 1000
    scale_ttl: int = 300
    only: str = ""
    broker_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Bench:
    """What every phase works with."""

    options: Options
    stub: AccessBrokerAsyncStub
    world: World
    boundary: Boundary
    # Two buckets every phase may grant on.
    data: str
    other: str


REPEATED_GRANT = "repeated identical GrantAccess, per request"


@dataclass(frozen=True)
class Planned:
    """An RPC to drive side by side with echo, and its goals with how to read each."""

    method: str
    request: Message
    goals: list[tuple[goals.Goal, Callable[[RpcRow], float]]] = field(default_factory=list)
    label: str = ""


async def rpc_phase(
    bench: Bench, channels: tuple[grpc.aio.Channel, grpc.aio.Channel]
) -> tuple[list[RpcRow], AwsRow, list[str]]:
    """The reads and the no-op grant side by side with echo; the no-op grant's AWS calls; the
    ids of the grants the phase made."""
    options, stub, boundary = bench.options, bench.stub, bench.boundary
    (instance,) = bench.world.instances(1)
    requests = [
        grant_request(instance, bench.data, f"reads/p{n}/") for n in range(options.list_size)
    ]
    progress(f"granting {len(requests)} grants to read")
    grants = [(await stub.GrantAccess(r, timeout=RPC_TIMEOUT)).grant for r in requests]
    if note := state_note(grants, pb.GRANT_STATE_ACTIVE):
        raise RuntimeError(f"the grants to read are not active: {note}")

    def throughput(row: RpcRow) -> float:
        return row.throughput_ratio

    def p99(row: RpcRow) -> float:
        return row.p99_ratio

    plan: list[Planned] = [
        Planned(
            "GetGrant",
            pb.GetGrantRequest(grant_id=grants[0].grant_id),
            [(goals.GET_GRANT_THROUGHPUT, throughput), (goals.GET_GRANT_P99, p99)],
        ),
        Planned("ListGrants", pb.ListGrantsRequest(instance_id=instance)),
        Planned("DescribeInstanceAccess", pb.DescribeInstanceAccessRequest(instance_id=instance)),
        Planned(
            "GrantAccess",
            requests[0],
            [(goals.REPEATED_GRANT_THROUGHPUT, throughput)],
            label="GrantAccess, repeated identical",
        ),
    ]
    await check_answers(stub, plan, grants)
    echo_channel, broker_channel = channels
    rows, repeated = [], AwsRow(REPEATED_GRANT, None)
    for planned in plan:
        progress(f"{planned.label or planned.method}: broker beside echo")
        path = f"/{SERVICE}/{planned.method}"
        mark = await boundary.settle()
        result = await side_by_side(
            raw_method(echo_channel, path),
            raw_method(broker_channel, path),
            planned.request.SerializeToString(),
            in_flight=options.in_flight,
            slices=options.slices,
            slice_seconds=options.slice_seconds,
            warmup_seconds=options.warmup_seconds,
            timeout=RPC_TIMEOUT,
        )
        row = RpcRow(planned.label or planned.method, result.echo, result.broker)
        row.goals = [(goal, judged(row)) for goal, judged in planned.goals]
        rows.append(row)
        if planned.method == "GrantAccess":
            tally, sent = await boundary.since(mark), max(result.broker_requests, 1)
            goal = (goals.REPEATED_GRANT_WRITES, tally.writes / sent)
            repeated = AwsRow(REPEATED_GRANT, tally, goals=[goal], per=sent)
    return rows, repeated, [g.grant_id for g in grants]


async def check_answers(
    stub: AccessBrokerAsyncStub, plan: Sequence[Planned], grants: Sequence[pb.Grant]
) -> None:
    """One typed call of each planned request: what the benchmark measures is success."""
    for request in (planned.request for planned in plan):
        if isinstance(request, pb.GetGrantRequest):
            ok = (await stub.GetGrant(request, timeout=RPC_TIMEOUT)).grant_id == request.grant_id
        elif isinstance(request, pb.ListGrantsRequest):
            ok = len((await stub.ListGrants(request, timeout=RPC_TIMEOUT)).grants) == len(grants)
        elif isinstance(request, pb.DescribeInstanceAccessRequest):
            answer = await stub.DescribeInstanceAccess(request, timeout=RPC_TIMEOUT)
            ok = len(answer.grants) == len(grants) and bool(answer.policy_document)
        else:
            assert isinstance(request, pb.GrantAccessRequest)
            again = (await stub.GrantAccess(request, timeout=RPC_TIMEOUT)).grant
            ok = again.grant_id == grants[0].grant_id and again.state == pb.GRANT_STATE_ACTIVE
        if not ok:
            raise RuntimeError(f"unexpected answer to {type(request).__name__}")


async def economy_phase(bench: Bench, leftovers: Sequence[str]) -> list[AwsRow]:
    """The AWS calls of each operation, one at a time."""
    stub, boundary, data, other = bench.stub, bench.boundary, bench.data, bench.other
    held: dict[str, pb.Grant] = {}
    (instance,) = bench.world.instances(1)

    async def grant(key: str, bucket: str) -> str:
        request = grant_request(instance, bucket)
        held[key] = (await stub.GrantAccess(request, timeout=RPC_TIMEOUT)).grant
        return state_note([held[key]], pb.GRANT_STATE_ACTIVE)

    async def revoke(key: str) -> str:
        request = pb.RevokeAccessRequest(grant_id=held.pop(key).grant_id)
        answer = await stub.RevokeAccess(request, timeout=RPC_TIMEOUT)
        return state_note([answer.grant], pb.GRANT_STATE_REVOKED)

    first = await measured(boundary, "first grant on an instance", lambda: grant("data", data))
    first.goals = [(goals.FIRST_GRANT_CALLS, calls_of(first))]
    another = await measured(
        boundary, "grant on another bucket, same instance", lambda: grant("other", other)
    )
    another.goals = [(goals.ANOTHER_BUCKET_CALLS, calls_of(another))]
    one = await measured(boundary, "revoke one of two grants", lambda: revoke("other"))
    one.goals = [(goals.REVOKE_ONE_OF_TWO_CALLS, calls_of(one))]
    last = await measured(boundary, "revoke the last grant", lambda: revoke("data"))
    rows = [first, another, one, last, *await burst_rows(bench)]
    if leftovers:
        progress(f"revoking the {len(leftovers)} grants to read")
        await asyncio.gather(*(revoke_quietly(stub, g) for g in leftovers))
    rows.append(await drift_row(bench))
    return rows


async def burst_rows(bench: Bench) -> list[AwsRow]:
    """--burst concurrent grants on one instance, one bucket each; then their revocations."""
    options, stub, boundary = bench.options, bench.stub, bench.boundary
    buckets = bench.world.buckets("burst", options.burst)
    (instance,) = bench.world.instances(1)
    granted: list[pb.Grant] = []

    async def grants() -> str:
        answers = await asyncio.gather(
            *(stub.GrantAccess(grant_request(instance, b), timeout=RPC_TIMEOUT) for b in buckets)
        )
        granted.extend(a.grant for a in answers)
        return state_note(granted, pb.GRANT_STATE_ACTIVE)

    async def revocations() -> str:
        answers = await asyncio.gather(
            *(
                stub.RevokeAccess(pb.RevokeAccessRequest(grant_id=g.grant_id), timeout=RPC_TIMEOUT)
                for g in granted
            )
        )
        return state_note([a.grant for a in answers], pb.GRANT_STATE_REVOKED)

    burst = await measured(boundary, f"{options.burst} concurrent grants, one instance", grants)
    if options.burst == goals.BURST_SIZE:
        burst.goals = [
            (goals.BURST_PUT_ROLE_POLICY, calls_of(burst, "PutRolePolicy")),
            (goals.BURST_CALLS, calls_of(burst)),
            (goals.BURST_SECONDS, burst.seconds),
        ]
    undo = await measured(
        boundary, f"{options.burst} concurrent revocations, same instance", revocations
    )
    return [burst, undo]


async def drift_row(bench: Bench) -> AwsRow:
    """A drift pass (Reconcile with no instance, not a dry run) over instances with one grant
    each, and nothing else live."""
    options, stub = bench.options, bench.stub
    count = options.drift_instances
    instances = bench.world.instances(count)
    progress(f"granting {count} instances one grant each, {options.setup_concurrency} at a time")
    gate = asyncio.Semaphore(options.setup_concurrency)

    async def grant(instance: str) -> pb.Grant:
        async with gate:
            request = grant_request(instance, bench.data)
            return (await stub.GrantAccess(request, timeout=RPC_TIMEOUT)).grant

    setup = await asyncio.gather(*(grant(i) for i in instances))
    setup_note = state_note(setup, pb.GRANT_STATE_ACTIVE)

    async def reconcile() -> str:
        request = pb.ReconcileRequest(instance_id="", dry_run=False)
        answer = await stub.Reconcile(request, timeout=RECONCILE_TIMEOUT)
        found = f"{len(answer.drifts)} drifts found"
        return f"{found}; setup: {setup_note}" if setup_note else found

    row = await measured(bench.boundary, f"drift pass, {count} instances, per instance", reconcile)
    row.per = count
    row.goals = goals.drift_goals(count, calls_of(row), row.seconds)
    return row


async def revoke_quietly(stub: AccessBrokerAsyncStub, grant_id: str) -> None:
    request = pb.RevokeAccessRequest(grant_id=grant_id)
    await stub.RevokeAccess(request, timeout=RPC_TIMEOUT)


@dataclass
class Report:
    rpc: list[RpcRow] = field(default_factory=list)
    aws: list[AwsRow] = field(default_factory=list)
    peak_rss_mb: float = math.nan


async def run(options: Options, aws: Aws, broker: Broker, echo_address: str) -> Report:
    world = World.of(aws)
    data, other = world.buckets("data", 1)[0], world.buckets("other", 1)[0]
    boundary = Boundary(aws, options.quiet_seconds)
    progress("waiting for the broker's start-up sweeps to finish")
    await boundary.settle()
    report = Report()
    async with (
        grpc.aio.insecure_channel(echo_address) as echo_channel,
        grpc.aio.insecure_channel(broker.address) as broker_channel,
    ):
        stub = broker_pb2_grpc.AccessBrokerStub(broker_channel)
        bench = Bench(options, stub, world, boundary, data, other)
        leftovers: list[str] = []
        if options.only in ("", "rpc"):
            channels = (echo_channel, broker_channel)
            report.rpc, repeated, leftovers = await rpc_phase(bench, channels)
            report.aws.append(repeated)
        if options.only in ("", "aws"):
            rows = await economy_phase(bench, leftovers)
            report.aws[:0] = rows[:-1]
            report.aws.append(rows[-1])
    report.peak_rss_mb = broker.peak_rss_mb()
    return report


def describe_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "broker")
    return f"{commit}, broker/ {'with uncommitted changes' if changed else 'as committed'}"


def header(options: Options) -> list[str]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    return [
        f"accessbroker bench, {now}, commit {describe_commit()}",
        f"machine: {os.cpu_count()} CPUs, load average {load}; Python {platform.python_version()},"
        f" grpcio {grpc.__version__}",
        f"client: grpc.aio, {options.in_flight} in flight; per RPC {options.slices} slices of "
        f"{options.slice_seconds:g} s on each server, alternating (after a "
        f"{options.warmup_seconds:g} s warm-up)",
        "broker: access-broker serve, SQLite, auth none, sweeps idle; AWS: moto behind a "
        "counting proxy; echo: bare grpcio",
    ]


def render(options: Options, report: Report) -> str:
    lines = header(options)
    if report.rpc:
        lines += ["", *rpc_table(report.rpc, options.in_flight)]
        errors = [f"  {r.name}: {r.broker.first_error}" for r in report.rpc if r.broker.errors]
        lines += ["", "first error of each RPC that failed:", *errors] if errors else []
    if report.aws:
        lines += ["", *aws_table(report.aws), "", "calls by action:", *breakdown(report.aws)]
    lines += ["", f"broker peak RSS (VmHWM): {report.peak_rss_mb:.0f} MiB"]
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    default = Options()
    add = parser.add_argument
    add("--in-flight", type=int, default=default.in_flight, help="calls in flight per server")
    add("--slices", type=int, default=default.slices, help="slices per server and RPC")
    add("--slice-seconds", type=float, default=default.slice_seconds, help="length of a slice")
    add("--warmup-seconds", type=float, default=default.warmup_seconds, help="per server and RPC")
    add("--list-size", type=int, default=default.list_size, help="grants ListGrants returns")
    add("--burst", type=int, default=default.burst, help="concurrent grants on one instance")
    add(
        "--drift-instances",
        type=int,
        default=default.drift_instances,
        help="instances (one grant each) the drift pass covers",
    )
    add(
        "--setup-concurrency",
        type=int,
        default=default.setup_concurrency,
        help="grants at a time while preparing the drift pass",
    )
    add(
        "--quiet-seconds",
        type=float,
        default=default.quiet_seconds,
        help="an operation's AWS calls are counted until none arrived for this long",
    )
    add(
        "--scale-instances",
        type=int,
        default=default.scale_instances,
        help="instances of the scale run (--only scale)",
    )
    add(
        "--scale-ttl",
        type=int,
        default=default.scale_ttl,
        help="the scale run's grants' ttl in seconds: long enough to grant all and pass once",
    )
    add(
        "--only",
        choices=("rpc", "aws", "scale"),
        help="run one half of the benchmark only, or the scale run (not run otherwise)",
    )
    add(
        "--broker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the broker (repeatable), e.g. BROKER_LOG_LEVEL=WARNING",
    )
    args = parser.parse_args(argv)
    broker_env = dict(item.partition("=")[::2] for item in args.broker_env)
    return Options(
        in_flight=args.in_flight,
        slices=args.slices,
        slice_seconds=args.slice_seconds,
        warmup_seconds=args.warmup_seconds,
        list_size=args.list_size,
        burst=args.burst,
        drift_instances=args.drift_instances,
        setup_concurrency=args.setup_concurrency,
        quiet_seconds=args.quiet_seconds,
        scale_instances=args.scale_instances,
        scale_ttl=args.scale_ttl,
        only=args.only or "",
        broker_env=broker_env,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    started = time.monotonic()
    if options.only == "scale":
        print(scale_run(options))
        progress(f"done in {time.monotonic() - started:.0f} s")
        return 0
    with tempfile.TemporaryDirectory(prefix="accessbroker-bench-") as scratch:
        progress("starting AWS (emulator and counting proxy), the echo server and the broker")
        with (
            aws_side(Path(scratch)) as aws,
            echo_server(Path(scratch)) as echo,
            broker_server(aws, Path(scratch), options.broker_env) as broker,
        ):
            try:
                report = asyncio.run(run(options, aws, broker, echo))
            except BaseException:
                print(f"the broker's last lines:\n{log_tail(broker.log)}", file=sys.stderr)
                raise
    print(render(options, report))
    progress(f"done in {time.monotonic() - started:.0f} s")
    return 0


def scale_run(options: Options) -> str:
    scaled = ScaleOptions(
        instances=options.scale_instances,
        ttl_seconds=options.scale_ttl,
        concurrency=options.setup_concurrency,
        quiet_seconds=options.quiet_seconds,
        broker_env=options.broker_env,
    )
    with tempfile.TemporaryDirectory(prefix="accessbroker-scale-") as scratch:
        progress("starting AWS (emulator and counting proxy)")
        with aws_side(Path(scratch)) as aws:
            report = asyncio.run(scale(scaled, aws, Path(scratch)))
    lines = [
        *header(options)[:2],
        f"scale run: {scaled.instances} instances, grants made "
        f"{scaled.concurrency} at a time; broker: SQLite, {SCALE_ENV}",
    ]
    lines += ["", *aws_table(report.rows), "", "calls by action:", *breakdown(report.rows)]
    growth = ", ".join(f"{n} grants: {mb:.0f} MiB" for n, mb in report.rss)
    lines += ["", f"broker peak RSS (VmHWM) while granting: {growth}"]
    lines += [f"peak RSS of the broker that expired them: {report.expiry_rss_mb:.0f} MiB"]
    return "\n".join(lines)
