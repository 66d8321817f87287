"""AWS for the benchmark, in a process of its own: the sandbox's emulator (moto, with IAM
authorization enforced) behind a counting proxy (bench/counting_proxy.py).

Prints one JSON line (the emulator's and the proxy's URLs, the region, an admin key and the
permissions boundary `serve` requires), then serves until its standard input closes.

    .venv/bin/python -m bench.aws_side
"""

import json
import sys

from bench.counting_proxy import CountingProxy
from broker.sandbox import Emulator


def main() -> None:
    with Emulator() as emulator, CountingProxy(emulator.endpoint_url) as proxy:
        admin = emulator.admin_credentials
        announcement = {
            "emulator_url": emulator.endpoint_url,
            "proxy_url": proxy.url,
            "region": emulator.region,
            "access_key_id": admin.access_key_id,
            "secret_access_key": admin.secret_access_key,
            "boundary_arn": emulator.permissions_boundary(),
        }
        print(json.dumps(announcement), flush=True)
        sys.stdin.read()  # until the benchmark closes our standard input (or exits)


if __name__ == "__main__":
    main()
