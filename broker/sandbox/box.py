"""`serve --sandbox` and the demo: the broker wired, by bootstrap, to an embedded AWS emulator
seeded with two buckets and a running instance."""

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from broker.bootstrap import Runtime, build_runtime
from broker.sandbox.emulator import Emulator
from broker.settings import Settings

log = logging.getLogger(__name__)

DATA_BUCKET = "sandbox-data"
OTHER_BUCKET = "sandbox-other"


@dataclass(frozen=True)
class Sandbox:
    emulator: Emulator
    runtime: Runtime
    settings: Settings
    instance_id: str
    bucket: str
    other_bucket: str


def sandbox_settings(settings: Settings) -> Settings:
    """The sandbox's callers are anonymous unless BROKER_AUTH_MODE says otherwise, so that
    `make run` and `make demo` work with one command, with no tokens or certificates."""
    if settings.auth_mode is not None:
        return settings
    log.warning("the sandbox turns authentication off: BROKER_AUTH_MODE is not set")
    return settings.model_copy(update={"auth_mode": "none"})


@contextmanager
def sandbox(settings: Settings, *, keep_database_url: bool = False) -> Iterator[Sandbox]:
    """A running emulator and a runtime wired to it. The database is a throwaway SQLite file
    unless `keep_database_url`: the emulator's state lives only as long as this process."""
    with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="accessbroker-") as tmp:
        emulator.create_bucket(DATA_BUCKET)
        emulator.create_bucket(OTHER_BUCKET)
        instance_id = emulator.run_instance()
        database_url = (
            settings.database_url if keep_database_url else f"sqlite:///{Path(tmp, 'sandbox.db')}"
        )
        wired = sandbox_settings(settings).model_copy(
            update={
                "aws_endpoint_url": emulator.endpoint_url,
                "database_url": database_url,
                "permissions_boundary_arn": emulator.permissions_boundary(),
            }
        )
        runtime = build_runtime(
            wired, aws_credentials=emulator.admin_credentials, aws_region=emulator.region
        )
        try:
            yield Sandbox(emulator, runtime, wired, instance_id, DATA_BUCKET, OTHER_BUCKET)
        finally:
            runtime.close()
