"""What every phase of the benchmark works with: the instances and buckets it makes in the
emulator, the AWS boundary it counts calls at, and measuring one operation there."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import grpc
import grpc.aio

from accessbroker.v1 import broker_pb2 as pb
from bench.measure import AwsTally
from bench.processes import Aws
from bench.report import AwsRow
from broker.sandbox.emulator import SANDBOX_AMI_ID

if TYPE_CHECKING:
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_s3.client import S3Client

RPC_TIMEOUT = 120.0
RECONCILE_TIMEOUT = 1800.0
# How often the boundary is asked whether AWS calls are still arriving.
POLL_SECONDS = 0.1


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Boundary:
    """The AWS calls the counting proxy saw between a mark and the moment AWS went quiet."""

    def __init__(self, aws: Aws, quiet_seconds: float) -> None:
        self._aws, self._quiet = aws, quiet_seconds

    async def _total(self) -> int:
        total, _ = await asyncio.to_thread(self._aws.calls, sys.maxsize)
        return total

    async def settle(self) -> int:
        """The number of calls so far, once none has arrived for the quiet time."""
        last, since = await self._total(), time.monotonic()
        while time.monotonic() - since < self._quiet:
            await asyncio.sleep(POLL_SECONDS)
            now = await self._total()
            if now != last:
                last, since = now, time.monotonic()
        return last

    async def since(self, mark: int) -> AwsTally:
        await self.settle()
        _, calls = await asyncio.to_thread(self._aws.calls, mark)
        return AwsTally.of(action for _, action, _ in calls)


@dataclass(frozen=True)
class World:
    """Instances and buckets made in the emulator directly: the proxy does not count them."""

    ec2: EC2Client
    s3: S3Client
    tag: str

    @classmethod
    def of(cls, aws: Aws) -> World:
        session = boto3.Session(
            aws_access_key_id=aws.access_key_id,
            aws_secret_access_key=aws.secret_access_key,
            region_name=aws.region,
        )
        tag = os.urandom(4).hex()
        ec2 = session.client("ec2", endpoint_url=aws.emulator_url)
        return cls(ec2, session.client("s3", endpoint_url=aws.emulator_url), tag)

    def instances(self, count: int) -> list[str]:
        made = self.ec2.run_instances(
            ImageId=SANDBOX_AMI_ID, InstanceType="t3.micro", MinCount=count, MaxCount=count
        )
        return [instance["InstanceId"] for instance in made["Instances"]]

    def buckets(self, name: str, count: int) -> list[str]:
        names = [f"bench-{self.tag}-{name}-{n}" for n in range(count)]
        for bucket in names:
            self.s3.create_bucket(Bucket=bucket)
        return names


def grant_request(instance_id: str, bucket: str, prefix: str = "") -> pb.GrantAccessRequest:
    return pb.GrantAccessRequest(
        instance_id=instance_id, bucket=bucket, access=pb.ACCESS_READ, prefix=prefix
    )


def state_note(grants: Sequence[pb.Grant], wanted: int) -> str:
    """ "" when every grant is in the state wanted, else what they are (and why)."""
    off = [g for g in grants if g.state != wanted]
    if not off:
        return ""
    first = off[0]
    reason = f": {first.failure_reason}" if first.failure_reason else ""
    return f"{len(off)} of {len(grants)} {pb.GrantState.Name(first.state)}{reason}"


async def measured(
    boundary: Boundary, name: str, operation: Callable[[], Awaitable[str]]
) -> AwsRow:
    """The operation's AWS calls and wall time; its note (or its failure) beside them."""
    progress(name)
    mark = await boundary.settle()
    started = time.perf_counter()
    try:
        note = await operation()
    except grpc.aio.AioRpcError as error:
        return AwsRow(name, None, note=f"failed: {error.code().name}: {error.details()}")
    except (LookupError, ValueError) as error:  # what an earlier failure left missing
        return AwsRow(name, None, note=f"not run: {error!r}")
    seconds = time.perf_counter() - started
    return AwsRow(name, await boundary.since(mark), seconds=seconds, note=note)


def calls_of(row: AwsRow, action: str = "") -> float:
    if row.tally is None:
        return math.nan
    return float(row.tally.count(action) if action else row.tally.calls)
