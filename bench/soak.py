"""A bounded soak: N grants and revokes through a fault-injecting proxy, then drift and leaks.

Starts its own AWS emulator, fault proxy and `access-broker serve` (all on loopback, with a
throwaway SQLite database), runs --operations calls spread over --instances, switches the
faults off, waits for the broker to settle and compares AWS with the grants. Exits 1 when
anything drifted or leaked.

    .venv/bin/python bench/soak.py --operations 60 --seed 7
"""

import argparse
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

# The fault proxy and the broker process wrapper live with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker.sandbox import Emulator
from tests.e2e.broker_process import BrokerProcess
from tests.faults import Exchange, FaultProxy, Faults, checks
from tests.faults.workload import run_batch, wait_until_settled


def retries(exchanges: list[Exchange]) -> tuple[int, int]:
    """(logical calls, retries) among the AWS requests the proxy saw.

    A retry is a request that repeats, byte for byte in its parameters, a request that failed
    transiently (an injected fault, or a 5xx) and has not been answered since, whoever repeats
    it (botocore, the broker's retry budgets, the caller with its idempotency key, the sweep).
    Every other
    request is a logical call. Reads that a new convergence repeats after a success are logical
    calls, not retries.
    """
    failed: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    calls = repeats = 0
    for exchange in exchanges:
        if not exchange.action:
            continue
        key = (exchange.action, tuple(sorted(exchange.params.items())))
        if key in failed:
            repeats += 1
        else:
            calls += 1
        if exchange.fault or exchange.status >= 500:
            failed.add(key)
        else:
            failed.discard(key)
    return calls, repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=60)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of requests faulted")
    args = parser.parse_args()

    rate = args.fault_rate
    mixed = Faults(
        throttle=rate * 0.35,
        server_error=rate * 0.25,
        drop_request=rate * 0.2,
        drop_response=rate * 0.2,
    )
    rules = {"*": mixed, "AssociateIamInstanceProfile": replace(mixed, propagation_seconds=1.0)}
    role_path = f"/accessbroker/soak-{uuid.uuid4().hex[:8]}/"
    started = time.monotonic()
    with (
        Emulator() as emulator,
        FaultProxy(emulator.endpoint_url, seed=args.seed) as proxy,
        tempfile.TemporaryDirectory() as scratch,
    ):
        buckets = [f"soak-{uuid.uuid4().hex[:10]}-{n}" for n in range(2)]
        for bucket in buckets:
            emulator.create_bucket(bucket)
        instances = [emulator.run_instance() for _ in range(args.instances)]
        broker = BrokerProcess(
            emulator,
            f"sqlite:///{Path(scratch) / 'soak.db'}",
            BROKER_AWS_ENDPOINT_URL=proxy.url,
            BROKER_SWEEP_INTERVAL_SECONDS="1",
            BROKER_PROPAGATION_TIMEOUT="5",
            BROKER_ROLE_PATH=role_path,
        )
        broker.start()
        try:
            proxy.set_rules(rules)
            per_instance = max(1, args.operations // args.instances)
            tally = run_batch(broker.stub, instances, buckets, per_instance, seed=args.seed)
            proxy.set_rules({})
            grants = wait_until_settled(broker.stub, instances, timeout=60)
            drift = [
                problem
                for i in instances
                for problem in checks.drift(emulator, i, [g for g in grants if g.instance_id == i])
            ]
            live = {g.instance_id for g in checks.live_grants(grants)}
            leaks = checks.leaks(emulator, role_path, live)
        finally:
            broker.stop()
        exchanges = proxy.exchanges

    calls, repeated = retries(exchanges)
    faults = proxy.faults
    print(
        f"operations        {tally.operations} ({len(grants)} grants) in "
        f"{time.monotonic() - started:.1f} s"
    )
    print(f"callers' retries  {dict(tally.failed_attempts) or 0} (same idempotency key)")
    print(f"AWS requests      {calls + repeated}: {calls} logical calls, {repeated} retries")
    print(
        f"faults injected   {sum(faults.values())}: "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(faults.items()))
    )
    print(f"final drift       {len(drift)}")
    print(f"leaked resources  {len(leaks)}")
    for problem in drift + leaks:
        print(f"  {problem}")
    return 1 if drift or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
