"""The scale run (`python -m bench --only scale`): many instances with one grant each, a drift
pass over all of them, and the expiry of all of them; each phase's AWS calls, and the broker's
peak RSS as the grants grow.

The grants carry a ttl long enough for the grants and the drift pass (--scale-ttl). Once the
pass is done the broker stops; when the ttl has run out it starts again on the same database,
and its start-up sweep expires every grant: the expiry phase is that sweep, measured until no
grant is active and AWS is quiet. The broker's budget for IAM writes is off (the emulator never
throttles), and so is its orphan sweep, whose listing would be counted with the expiry.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc.aio

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from bench import goals
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
from bench.processes import Aws, Broker, broker_server
from bench.report import AwsRow

SCALE_ENV = {"BROKER_AWS_WRITE_RATE": "0", "BROKER_REMOVE_ORPHANS": "false"}
# How often the grants' progress (and the broker's peak RSS) is noted while granting.
CHECKPOINTS = 4


@dataclass
class ScaleReport:
    rows: list[AwsRow] = field(default_factory=list)
    # (grants made so far, the broker's peak RSS then, MiB)
    rss: list[tuple[int, float]] = field(default_factory=list)
    # The second broker's, which expired them all.
    expiry_rss_mb: float = float("nan")


@dataclass(frozen=True)
class ScaleOptions:
    instances: int
    ttl_seconds: int
    concurrency: int
    quiet_seconds: float
    broker_env: dict[str, str]


async def scale(options: ScaleOptions, aws: Aws, scratch: Path) -> ScaleReport:
    world, report = World.of(aws), ScaleReport()
    bucket = world.buckets("scale", 1)[0]
    path = f"/accessbroker/scale-{uuid.uuid4().hex[:8]}/"
    env = {**options.broker_env, **SCALE_ENV, "BROKER_ROLE_PATH": path}
    boundary = Boundary(aws, options.quiet_seconds)
    progress(f"making {options.instances} instances")
    instances = world.instances(options.instances)
    with broker_server(aws, scratch, env) as broker:
        await boundary.settle()
        async with grpc.aio.insecure_channel(broker.address) as channel:
            stub = broker_pb2_grpc.AccessBrokerStub(channel)
            granting = await _grant_all(
                options, stub, broker=broker, boundary=boundary, instances=instances, bucket=bucket
            )
            report.rows.append(granting.row)
            report.rss = granting.rss
            report.rows.append(await _drift_pass(stub, boundary, len(instances)))
    left = granting.last_granted + options.ttl_seconds + 1 - time.monotonic()
    progress(f"waiting {max(left, 0):.0f} s for the grants to expire")
    await asyncio.sleep(max(left, 0))
    expiry, report.expiry_rss_mb = await _expire_all(aws, scratch, env, boundary, len(instances))
    report.rows.append(expiry)
    return report


@dataclass
class _Granted:
    row: AwsRow
    rss: list[tuple[int, float]]
    last_granted: float = 0.0


async def _grant_all(
    options: ScaleOptions,
    stub: broker_pb2_grpc.AccessBrokerAsyncStub,
    *,
    broker: Broker,
    boundary: Boundary,
    instances: list[str],
    bucket: str,
) -> _Granted:
    gate, granted = asyncio.Semaphore(options.concurrency), []
    done = _Granted(AwsRow("", None), [])
    every = max(len(instances) // CHECKPOINTS, 1)

    async def grant(instance: str) -> None:
        async with gate:
            request = grant_request(instance, bucket)
            request.ttl.FromSeconds(options.ttl_seconds)
            granted.append((await stub.GrantAccess(request, timeout=RPC_TIMEOUT)).grant)
        done.last_granted = time.monotonic()
        if len(granted) % every == 0:
            done.rss.append((len(granted), broker.peak_rss_mb()))
            progress(f"{len(granted)} grants, broker peak RSS {done.rss[-1][1]:.0f} MiB")

    async def all_grants() -> str:
        await asyncio.gather(*(grant(i) for i in instances))
        return state_note(granted, pb.GRANT_STATE_ACTIVE)

    name = f"{len(instances)} first grants, {options.concurrency} callers, per grant"
    done.row = await measured(boundary, name, all_grants)
    done.row.per = len(instances)
    rate = len(instances) / done.row.seconds
    done.row.note = "; ".join(n for n in (f"{rate:.1f} grants/s", done.row.note) if n)
    done.row.goals = [(goals.FIRST_GRANT_CALLS, calls_of(done.row) / len(instances))]
    if done.rss:
        done.row.goals.append((goals.SCALE_PEAK_RSS, done.rss[-1][1]))
    return done


async def _drift_pass(
    stub: broker_pb2_grpc.AccessBrokerAsyncStub, boundary: Boundary, count: int
) -> AwsRow:
    async def reconcile() -> str:
        request = pb.ReconcileRequest(instance_id="", dry_run=False)
        answer = await stub.Reconcile(request, timeout=RECONCILE_TIMEOUT)
        return f"{len(answer.drifts)} drifts found"

    row = await measured(boundary, f"drift pass, {count} instances, in all", reconcile)
    row.goals = goals.drift_goals(count, calls_of(row), row.seconds)
    return row


async def _expire_all(
    aws: Aws, scratch: Path, env: dict[str, str], boundary: Boundary, count: int
) -> tuple[AwsRow, float]:
    """The second broker's start-up sweep ending every grant, until none is active."""
    name = f"expiry of all {count} grants (the sweep, from its start), per instance"
    progress(name)
    mark = await boundary.settle()
    started = time.perf_counter()
    with broker_server(aws, scratch, env) as broker:
        async with grpc.aio.insecure_channel(broker.address) as channel:
            stub = broker_pb2_grpc.AccessBrokerStub(channel)
            active = pb.ListGrantsRequest(state=pb.GRANT_STATE_ACTIVE, page_size=1)
            while (await stub.ListGrants(active, timeout=RPC_TIMEOUT)).grants:
                await asyncio.sleep(0.5)
        seconds = time.perf_counter() - started
        tally = await boundary.since(mark)
        rss = broker.peak_rss_mb()
    row = AwsRow(name, tally, per=count, seconds=seconds, note=f"{count / seconds:.1f} grants/s")
    return row, rss
