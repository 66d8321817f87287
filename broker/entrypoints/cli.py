"""`access-broker`: serve the API (on AWS or in a sandbox), run the demo, migrate the database,
verify the audit trail."""

import argparse
import logging
import queue
import signal
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from broker.bootstrap import (
    Runtime,
    build_runtime,
    migrate_database,
    require_boundary,
)
from broker.entrypoints.audit_verify import add_audit_commands, report_audit_trail
from broker.entrypoints.grpc.security import ServerSecurity, server_security
from broker.entrypoints.grpc.server import RunningServer, start_server
from broker.entrypoints.logs import configure_logging
from broker.entrypoints.metrics import Metrics, SweepMetrics, start_metrics
from broker.entrypoints.notifier import Notifier
from broker.entrypoints.sweeper import (
    Sweeper,
    audit_chore,
    drift_chore,
    orphan_chore,
    quota_chore,
)
from broker.release import release
from broker.sandbox.box import Sandbox, sandbox, sandbox_settings
from broker.sandbox.demo import run_demo
from broker.settings import ConfigurationError, Settings

log = logging.getLogger("broker")
# How soon a signal another thread received is handled.
SIGNAL_POLL_SECONDS = 0.5


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings(**_overrides(args))
    except ValidationError as error:
        print(f"access-broker: invalid configuration:\n{error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        return _serve(settings, sandboxed=args.sandbox)
    if args.command == "demo":
        return run_demo()
    if args.command == "audit":
        return report_audit_trail(settings.database_url, args.anchor)
    return _migrate(settings)


def _migrate(settings: Settings) -> int:
    pending = migrate_database(settings)
    print("database migrated to the latest schema" if pending else "database was up to date")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="access-broker", description=__doc__)
    parser.add_argument("--version", action="version", version=f"access-broker {release()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the gRPC API")
    serve.add_argument("--listen", help="host:port (BROKER_LISTEN, default 127.0.0.1:50051)")
    serve.add_argument("--database-url", help="SQLAlchemy URL (BROKER_DATABASE_URL)")
    serve.add_argument("--aws-endpoint-url", help="AWS endpoint (BROKER_AWS_ENDPOINT_URL)")
    serve.add_argument("--role-path", help="IAM path of roles (BROKER_ROLE_PATH)")
    serve.add_argument(
        "--propagation-timeout", type=float, help="seconds (BROKER_PROPAGATION_TIMEOUT)"
    )
    serve.add_argument(
        "--sandbox", action="store_true", help="serve against an embedded AWS emulator"
    )
    serve.add_argument(
        "--auth-mode",
        choices=("token", "mtls", "none"),
        help="how callers authenticate (BROKER_AUTH_MODE, default token; none in the sandbox)",
    )
    for name, what in (
        ("tls-cert", "the server's certificate chain, PEM"),
        ("tls-key", "the server's private key, PEM"),
        ("tls-client-ca", "the CA of client certificates, PEM (mtls)"),
        ("tokens-file", "YAML: identities and token digests (token)"),
        ("policy-file", "YAML: admins, denied buckets, rules"),
    ):
        variable = "BROKER_" + name.upper().replace("-", "_")
        serve.add_argument(f"--{name}", metavar="FILE", help=f"{what} ({variable})")
    commands.add_parser("demo", help="play the grant/revoke story against the sandbox")
    migrate = commands.add_parser("migrate", help="bring the database to the latest schema")
    migrate.add_argument("--database-url", help="SQLAlchemy URL (BROKER_DATABASE_URL)")
    add_audit_commands(commands)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given on the command line; the rest comes from the environment."""
    names = (
        *("listen", "database_url", "aws_endpoint_url", "role_path", "propagation_timeout"),
        *("auth_mode", "tls_cert", "tls_key", "tls_client_ca", "tokens_file", "policy_file"),
    )
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _serve(settings: Settings, *, sandboxed: bool) -> int:
    settings = sandbox_settings(settings) if sandboxed else settings
    try:
        # Every file is read before anything starts: a bad one is refused, changing nothing.
        security = server_security(settings)
        if not sandboxed:
            require_boundary(settings)
            runtime = build_runtime(settings)
            try:
                _serve_until_signalled(runtime, settings, security)
            finally:
                runtime.close()
            return 0
        with sandbox(settings) as box:
            _serve_until_signalled(box.runtime, box.settings, security, box)
        return 0
    except ConfigurationError as error:
        print(f"access-broker: invalid configuration:\n{error}", file=sys.stderr)
        return 2


def _serve_until_signalled(
    runtime: Runtime, settings: Settings, security: ServerSecurity, box: Sandbox | None = None
) -> None:
    # Caught before anything serves: a signal sent as soon as the broker answers must find its
    # handler (SIGHUP's default action would end the process).
    signals = _caught_signals()
    metrics = start_metrics(settings.metrics_listen, runtime)
    kept = metrics.kept if metrics else None
    notifier = Notifier(
        runtime.bus,
        [d.key for d in runtime.notifications.destinations],
        settings.notify_max_backoff_seconds,
        kept.notifications if kept else None,
    )
    notifier.start()
    running = start_server(
        runtime.bus,
        settings.listen,
        runtime.database_reachable,
        security=security,
        metrics=kept.grpc if kept else None,
        tracer=runtime.tracer,
        health_listen="" if settings.health_listen == "off" else settings.health_listen,
    )
    sweeper = _sweeper(runtime, settings, kept.sweeps if kept else None)
    sweeper.start()
    _announce(settings, running, metrics, box)
    while _next_signal(signals) == signal.SIGHUP:
        _reload(runtime, settings, security)
    log.info("stopping: letting calls in flight finish (%.0f s at most)", settings.shutdown_grace)
    running.stop(settings.shutdown_grace)
    sweeper.stop(timeout=settings.shutdown_grace)
    notifier.stop(timeout=settings.shutdown_grace)
    if metrics:
        metrics.endpoint.stop()


def _caught_signals() -> "queue.SimpleQueue[int]":
    """SIGTERM, SIGINT and SIGHUP, queued as they arrive for the main thread to act on."""
    signals: queue.SimpleQueue[int] = queue.SimpleQueue()  # put() is safe in a handler
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda received, _: signals.put(received))
    return signals


def _sweeper(runtime: Runtime, settings: Settings, sweeps: SweepMetrics | None) -> Sweeper:
    chores = [
        drift_chore(settings.drift_sweep_interval_seconds, sweeps),
        # IAM's usage figures change as roles come and go: as often as drift is looked for.
        quota_chore(settings.drift_sweep_interval_seconds),
        audit_chore(settings.audit_verify_interval_seconds, runtime.verify_audit_chain, sweeps),
    ]
    if settings.remove_orphans:
        chores.append(orphan_chore(settings.orphan_sweep_interval_seconds))
    return Sweeper(runtime.bus, settings.sweep_interval_seconds, chores, sweeps, runtime.tracer)


def _announce(
    settings: Settings, running: RunningServer, metrics: Metrics | None, box: Sandbox | None
) -> None:
    """Where the broker serves: its API (the line tests and scripts wait for), its metrics,
    its health port."""
    address = f"{settings.listen.rsplit(':', 1)[0]}:{running.port}"
    metrics_url = metrics.endpoint.url if metrics else "off"
    if box:
        print(_sandbox_banner(address, metrics_url, box), flush=True)
    else:
        print(f"accessbroker serving on {address}\nmetrics: {metrics_url}", flush=True)
    if running.health_port:
        host = settings.health_listen.rsplit(":", 1)[0]
        print(f"health (plaintext): {host}:{running.health_port}", flush=True)


def _next_signal(signals: "queue.SimpleQueue[int]") -> int:
    """The next signal received, waiting in short steps: the kernel may deliver a signal to any
    thread, and Python runs its handler only when the main thread next runs Python code, which
    a wait without end would never let it do."""
    while True:
        try:
            return signals.get(timeout=SIGNAL_POLL_SECONDS)
        except queue.Empty:
            continue


def _reload(runtime: Runtime, settings: Settings, security: ServerSecurity) -> None:
    """SIGHUP: re-reads the TLS, tokens, accounts and policy files. A file that fails to load
    is logged, and what is in force stays in force. The accounts and the policy go together
    (the policy's rules name accounts): both are taken, or neither."""
    log.info("SIGHUP: reloading the TLS, tokens, accounts and policy files")
    for reload, what in ((security.reload_tls, "TLS files"), (security.reload_tokens, "tokens")):
        try:
            reload()
        except ConfigurationError as error:
            log.error("%s not reloaded, the ones in force stay: %s", what, error)
    try:
        reloaded = runtime.reread(settings)
    except ConfigurationError as error:
        log.error(
            "accounts, boundaries and access policy not reloaded, those in force stay: %s", error
        )
        return
    runtime.reload(reloaded)
    if settings.accounts_file is not None:
        places = len(reloaded.accounts.places())
        log.info("reloaded %s: %d places", settings.accounts_file, places)
    if settings.policy_file is not None:
        log.info(
            "reloaded %s: %d rules, %d admins",
            settings.policy_file,
            len(reloaded.policy.rules),
            len(reloaded.policy.admins),
        )
    if settings.permissions_boundary_arn:
        log.info("read the permissions boundaries of %d accounts", len(reloaded.boundaries.reach))


def _sandbox_auth(settings: Settings) -> str:
    if settings.authentication == "none":
        return "none, every caller is anonymous (the sandbox's default; see BROKER_AUTH_MODE)"
    return f"{settings.authentication} (BROKER_AUTH_MODE)"


def _sandbox_banner(address: str, metrics_url: str, box: Sandbox) -> str:
    grant = (
        f'{{"instance_id": "{box.instance_id}", "bucket": "{box.bucket}", '
        '"access": "ACCESS_UPLOAD", "prefix": "reports/"}'
    )
    return f"""accessbroker sandbox serving on {address}
  AWS emulator (IAM authorization enforced): {box.emulator.endpoint_url}
  seeded: running instance {box.instance_id}; buckets {box.bucket}, {box.other_bucket}
  database: {box.settings.database_url} (thrown away on exit)
  authentication: {_sandbox_auth(box.settings)}
  metrics: {metrics_url}

Try it with brokerctl (in another terminal):
  export BROKER_ADDRESS={address}
  .venv/bin/brokerctl grant --instance {box.instance_id} --bucket {box.bucket} \\
      --access upload --prefix reports/
  .venv/bin/brokerctl describe {box.instance_id}
  .venv/bin/brokerctl audit --instance {box.instance_id}
or with grpcurl (the server offers reflection):
  grpcurl -plaintext -d '{grant}' {address} accessbroker.v1.AccessBroker/GrantAccess
Stop with Ctrl-C."""
