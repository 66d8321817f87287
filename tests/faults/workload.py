"""A seeded batch of grants and revokes, called the way a careful client calls the broker.

A call that fails with UNAVAILABLE (or DEADLINE_EXCEEDED) is retried with the same idempotency
key, so it can never double a grant; whatever a call leaves unfinished the broker's sweep
finishes.
"""

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import grpc

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from tests.waiting import WAIT_SECONDS, wait_for

T = TypeVar("T")
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
ACCESSES = (pb.ACCESS_UPLOAD, pb.ACCESS_READ, pb.ACCESS_READ_WRITE, pb.ACCESS_LIST)
SETTLING = (pb.GRANT_STATE_PENDING, pb.GRANT_STATE_REVOKING)


@dataclass
class Tally:
    """What the callers saw: operations done, and failed attempts by status code."""

    operations: int = 0
    failed_attempts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, outcome: str) -> None:
        with self.lock:
            if outcome == "ok":
                self.operations += 1
            else:
                self.failed_attempts[outcome] += 1


def until_done(call: Callable[[], T], tally: Tally, attempts: int = 30) -> T:
    """The call's result, retrying UNAVAILABLE and DEADLINE_EXCEEDED with a short pause."""
    for attempt in range(attempts):
        try:
            result = call()
        except grpc.RpcError as error:
            code = error.code()
            if code not in RETRYABLE or attempt == attempts - 1:
                raise
            tally.note(code.name)
            time.sleep(0.2)
        else:
            tally.note("ok")
            return result
    raise AssertionError("unreachable")


def run_instance_script(
    stub: broker_pb2_grpc.AccessBrokerStub,
    instance_id: str,
    buckets: Sequence[str],
    operations: int,
    *,
    rng: random.Random,
    tally: Tally,
    end_empty: bool = False,
) -> None:
    """`operations` grants and revokes on one instance; with `end_empty`, then revokes all."""
    live: list[str] = []
    for n in range(operations):
        if live and rng.random() < 0.4:
            _revoke(stub, live.pop(rng.randrange(len(live))), f"{instance_id}-r{n}", tally)
            continue
        request = pb.GrantAccessRequest(
            instance_id=instance_id,
            bucket=rng.choice(buckets),
            access=rng.choice(ACCESSES),
            prefix=f"p{n}/",
            idempotency_key=f"{instance_id}-g{n}",
        )
        response = until_done(partial(stub.GrantAccess, request, timeout=60), tally)
        live.append(response.grant.grant_id)
    if end_empty:
        for n, grant_id in enumerate(live):
            _revoke(stub, grant_id, f"{instance_id}-end{n}", tally)


def _revoke(stub: broker_pb2_grpc.AccessBrokerStub, grant_id: str, key: str, tally: Tally) -> None:
    request = pb.RevokeAccessRequest(grant_id=grant_id, idempotency_key=key)
    until_done(partial(stub.RevokeAccess, request, timeout=60), tally)


def run_batch(
    stub: broker_pb2_grpc.AccessBrokerStub,
    instance_ids: Sequence[str],
    buckets: Sequence[str],
    operations_per_instance: int,
    seed: int,
) -> Tally:
    """One thread per instance, each with a generator of its own; the first ends with no grants."""
    tally, errors = Tally(), list[BaseException]()

    def script(index: int, instance_id: str) -> None:
        try:
            rng = random.Random(f"{seed}:{index}")
            run_instance_script(
                stub,
                instance_id,
                buckets,
                operations_per_instance,
                rng=rng,
                tally=tally,
                end_empty=index == 0,
            )
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=script, args=(i, instance_id), name=f"script-{instance_id}")
        for i, instance_id in enumerate(instance_ids)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return tally


def grants_of(stub: broker_pb2_grpc.AccessBrokerStub, instance_id: str) -> list[pb.Grant]:
    grants: list[pb.Grant] = []
    token = ""
    while True:
        page = stub.ListGrants(
            pb.ListGrantsRequest(instance_id=instance_id, page_size=100, page_token=token),
            timeout=30,
        )
        grants.extend(page.grants)
        token = page.next_page_token
        if not token:
            return grants


@dataclass(frozen=True)
class Grants:
    """The grants of some instances, read at one moment; shown (in a failed wait's message) by
    those still settling."""

    grants: list[pb.Grant]

    @property
    def settling(self) -> list[pb.Grant]:
        return [g for g in self.grants if g.state in SETTLING]

    def __repr__(self) -> str:
        still = ", ".join(
            f"{g.grant_id} {pb.GrantState.Name(g.state)} ({g.failure_reason})"
            for g in self.settling
        )
        return f"{len(self.settling)} of {len(self.grants)} grants still settling: {still}"


def wait_until_settled(
    stub: broker_pb2_grpc.AccessBrokerStub,
    instance_ids: Sequence[str],
    timeout: float = WAIT_SECONDS,
) -> list[pb.Grant]:
    """Every grant of the instances once none is PENDING or REVOKING; NeverHappened naming the
    grants still settling after `timeout` seconds."""
    settled = wait_for(
        lambda: Grants([g for i in instance_ids for g in grants_of(stub, i)]),
        lambda seen: not seen.settling,
        what=f"every grant of {', '.join(instance_ids)} settling",
        timeout=timeout,
        interval=0.25,
    )
    return settled.grants
