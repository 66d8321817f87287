"""BrokerClient: the accessbroker API as Python methods with typed results and errors."""

import copy
import json
import os
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import grpc

from accessbroker._convert import (
    ACCESS_TO_PROTO,
    STATE_TO_PROTO,
    approval_result_from_proto,
    decision_from_proto,
    destination_from_proto,
    drift_from_proto,
    event_from_proto,
    grant_from_proto,
    grant_result_from_proto,
    instance_access_from_proto,
    ttl_to_proto,
)
from accessbroker._tracing import with_trace_context
from accessbroker.errors import DeadlineExceeded, FailedPrecondition, error_from_rpc
from accessbroker.models import (
    Access,
    AccessDecision,
    AuditEvent,
    Drift,
    Grant,
    GrantResult,
    GrantState,
    InstanceAccess,
    NotificationDestination,
)
from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"
# The metadata naming the person a delegate acts for.
ON_BEHALF_OF = "x-accessbroker-on-behalf-of"
# The initial metadata in which the server names the event id an audit stream starts after.
FEED_START_METADATA = "x-accessbroker-feed-start"
# gRPC retries UNAVAILABLE itself, with backoff. That is safe for every unary method: reads
# change nothing, grant/revoke always carry an idempotency key, so a retry never doubles a
# grant, and an extension only ever sets expires_at to max(expires_at, now + ttl), so a retry
# moves it at most by the retry's own delay. The audit stream is left out: watch() re-opens it
# after its last event instead.
_RETRIED_METHODS = (
    "GrantAccess",
    "RevokeAccess",
    # An approver counts once, and a denial repeated changes nothing.
    "ApproveGrant",
    "DenyGrant",
    "ExtendGrant",
    "GetGrant",
    "ListGrants",
    "DescribeInstanceAccess",
    "ListAuditEvents",
    "ListNotificationDestinations",
    # Finding and repairing drift is convergence, which is safe to repeat.
    "Reconcile",
    "ExplainAccess",
)
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [
                    {"service": "accessbroker.v1.AccessBroker", "method": method}
                    for method in _RETRIED_METHODS
                ],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
T = TypeVar("T")
# The longest pause between two attempts to re-open a dropped audit stream (seconds).
_MAX_RECONNECT_WAIT = 15.0


class BrokerClient:
    """A connection to the broker; thread-safe, and a context manager that closes it.

    `address` defaults to $BROKER_ADDRESS, then 127.0.0.1:50051. `tls` is True for TLS with the
    system's roots, or grpc.ssl_channel_credentials(...) for your own. `token` is sent as a
    bearer token. `timeout` bounds each call, in seconds.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        tls: bool | grpc.ChannelCredentials | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.address = address or os.environ.get("BROKER_ADDRESS") or DEFAULT_ADDRESS
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel = _open_channel(self.address, tls)
        self._stub = broker_pb2_grpc.AccessBrokerStub(self._channel)

    def acting_for(self, person: str) -> "BrokerClient":
        """A client on the same connection whose calls are made on behalf of `person` (the
        `x-accessbroker-on-behalf-of` metadata): for a web app the broker's access policy lists
        among its `delegates`. The broker authorizes and audits each call as `person`.
        Closing either client closes the connection both use."""
        acting = copy.copy(self)
        acting._metadata = (*self._metadata, (ON_BEHALF_OF, person))
        return acting

    def __enter__(self) -> "BrokerClient":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def grant(
        self,
        instance_id: str,
        bucket: str,
        access: Access | str,
        *,
        prefix: str = "",
        ttl: timedelta | float | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
        dry_run: bool = False,
        account: str = "",
        region: str = "",
    ) -> GrantResult:
        """Grants `instance_id` `access` to `bucket` under `prefix` ("" is the whole bucket).
        The instance lives in `account` (id or name, as the broker's accounts file names it) and
        `region`; "" for the broker's own account and its first region."""
        request = pb.GrantAccessRequest(
            instance_id=instance_id,
            account=account,
            region=region,
            bucket=bucket,
            access=ACCESS_TO_PROTO[Access.parse(access)],
            prefix=prefix,
            ttl=ttl_to_proto(ttl),
            reason=reason,
            idempotency_key=idempotency_key or _new_key(),
            dry_run=dry_run,
        )
        return grant_result_from_proto(self._call(self._stub.GrantAccess, request))

    def revoke(
        self, grant_id: str, *, reason: str = "", idempotency_key: str | None = None
    ) -> Grant:
        request = pb.RevokeAccessRequest(
            grant_id=grant_id, reason=reason, idempotency_key=idempotency_key or _new_key()
        )
        return grant_from_proto(self._call(self._stub.RevokeAccess, request).grant)

    def approve(
        self, grant_id: str, *, reason: str = "", ttl: timedelta | float | None = None
    ) -> GrantResult:
        """Approves a request awaiting approval; `ttl` may shorten the grant's, never lengthen
        it. The last approval needed returns the grant carried out (ACTIVE, normally). Safe to
        retry: an approver counts once, and `notice` says when an approval changed nothing."""
        request = pb.ApproveGrantRequest(grant_id=grant_id, reason=reason, ttl=ttl_to_proto(ttl))
        return approval_result_from_proto(self._call(self._stub.ApproveGrant, request))

    def deny(self, grant_id: str, *, reason: str = "") -> Grant:
        """Refuses a request awaiting approval: it ends DENIED."""
        request = pb.DenyGrantRequest(grant_id=grant_id, reason=reason)
        return grant_from_proto(self._call(self._stub.DenyGrant, request))

    def extend(self, grant_id: str, ttl: timedelta | float, *, reason: str = "") -> Grant:
        """Makes a live grant last at least `ttl` (a timedelta or seconds) from now; never
        shortens it. Retried on UNAVAILABLE: a retry ends up `ttl` from its own attempt, so
        the grant lasts at most `ttl` past the moment this returns, never longer."""
        request = pb.ExtendGrantRequest(grant_id=grant_id, ttl=ttl_to_proto(ttl), reason=reason)
        return grant_from_proto(self._call(self._stub.ExtendGrant, request))

    def get(self, grant_id: str) -> Grant:
        return grant_from_proto(
            self._call(self._stub.GetGrant, pb.GetGrantRequest(grant_id=grant_id))
        )

    def list_grants(
        self,
        *,
        instance_id: str | None = None,
        bucket: str | None = None,
        state: GrantState | str | None = None,
        awaiting_my_approval: bool = False,
        account: str = "",
        region: str = "",
    ) -> Iterator[Grant]:
        """Every matching grant, oldest first, fetching further pages as you iterate. With
        `awaiting_my_approval`, the requests waiting for the caller's approval instead.
        `account` and `region` narrow it to instances there ("": any)."""
        token = ""
        while True:
            request = pb.ListGrantsRequest(
                instance_id=instance_id or "",
                account=account,
                region=region,
                bucket=bucket or "",
                state=STATE_TO_PROTO[GrantState.parse(state)]
                if state
                else pb.GRANT_STATE_UNSPECIFIED,
                awaiting_my_approval=awaiting_my_approval,
                page_token=token,
            )
            page = self._call(self._stub.ListGrants, request)
            yield from (grant_from_proto(g) for g in page.grants)
            token = page.next_page_token
            if not token:
                return

    def describe(self, instance_id: str, *, account: str = "", region: str = "") -> InstanceAccess:
        request = pb.DescribeInstanceAccessRequest(
            instance_id=instance_id, account=account, region=region
        )
        return instance_access_from_proto(self._call(self._stub.DescribeInstanceAccess, request))

    def reconcile(
        self,
        instance_id: str | None = None,
        *,
        dry_run: bool = True,
        account: str = "",
        region: str = "",
    ) -> list[Drift]:
        """How AWS differs from what live grants need, for one instance or (None) all of them
        (in `account` and `region`, when given).

        A dry run (the default) only reports; otherwise the broker repairs what it may, and
        each difference says whether it was repaired.
        """
        request = pb.ReconcileRequest(
            instance_id=instance_id or "", dry_run=dry_run, account=account, region=region
        )
        response = self._call(self._stub.Reconcile, request)
        return [drift_from_proto(d) for d in response.drifts]

    def audit(
        self,
        *,
        instance_id: str | None = None,
        grant_id: str | None = None,
        account: str | None = None,
        region: str | None = None,
    ) -> Iterator[AuditEvent]:
        """The audit trail, oldest first, fetching further pages as you iterate; only the
        events about instances in `account` (id or name) and `region`, when given."""
        token = ""
        while True:
            request = pb.ListAuditEventsRequest(
                instance_id=instance_id or "",
                grant_id=grant_id or "",
                account=account or "",
                region=region or "",
                page_token=token,
            )
            page = self._call(self._stub.ListAuditEvents, request)
            yield from (event_from_proto(e) for e in page.events)
            token = page.next_page_token
            if not token:
                return

    def watch(
        self,
        *,
        after: int | None = None,
        instance_id: str | None = None,
        account: str | None = None,
        region: str | None = None,
        reconnect_attempts: int = 8,
    ) -> Generator[AuditEvent, None, None]:
        """Follows the audit trail: the events after event id `after` (0: all; None: only new
        ones), then each new one as it is written; only those about instances in `account`
        (id or name) and `region`, when given.

        A dropped connection is re-opened with backoff, resuming after the last event yielded
        (or, before the first, where the server said the stream started), so nothing is missed
        or repeated; after `reconnect_attempts` failures in a row it raises Unavailable.
        """
        cursor, failures = after, 0
        while True:
            request = pb.WatchAuditEventsRequest(
                instance_id=instance_id or "", account=account or "", region=region or ""
            )
            if cursor is not None:
                request.after_event_id = cursor
            try:
                metadata = with_trace_context(self._metadata)
                call = self._stub.WatchAuditEvents(request, metadata=metadata)
                cursor = _feed_start(call) if cursor is None else cursor
                for message in call:
                    event = event_from_proto(message)
                    cursor, failures = event.event_id, 0
                    yield event
            except grpc.RpcError as error:
                failures += 1
                if error.code() != grpc.StatusCode.UNAVAILABLE or failures > reconnect_attempts:
                    raise error_from_rpc(error) from None
            time.sleep(min(_MAX_RECONNECT_WAIT, 0.25 * 2**failures))

    def wait(
        self,
        grant_id: str,
        state: GrantState | str = GrantState.ACTIVE,
        *,
        timeout: float = 120.0,
        poll_interval: float = 0.5,
    ) -> Grant:
        """Waits for the grant to reach `state`; raises if it ends elsewhere or time runs out."""
        wanted = GrantState.parse(state)
        deadline = time.monotonic() + timeout
        while True:
            grant = self._get_by(grant_id, deadline)
            if grant.state == wanted:
                return grant
            if grant.state.is_final:
                reason = f" ({grant.failure_reason})" if grant.failure_reason else ""
                raise FailedPrecondition(
                    f"grant {grant_id} is {grant.state}{reason}; it will not become {wanted}"
                )
            if time.monotonic() >= deadline:
                raise DeadlineExceeded(
                    f"grant {grant_id} is still {grant.state} after {timeout:g} s"
                )
            time.sleep(poll_interval)

    def _get_by(self, grant_id: str, deadline: float) -> Grant:
        """get(), bounded by `deadline` as well as by the client's timeout."""
        # A sliver at least: a deadline already passed still gets its last look.
        timeout = max(0.05, min(self.timeout, deadline - time.monotonic()))
        request = pb.GetGrantRequest(grant_id=grant_id)
        return grant_from_proto(self._call(self._stub.GetGrant, request, timeout))

    def _call(self, method: Callable[..., T], request: object, timeout: float | None = None) -> T:
        try:
            timeout = self.timeout if timeout is None else timeout
            return method(request, timeout=timeout, metadata=with_trace_context(self._metadata))
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None

    def notification_destinations(self) -> list[NotificationDestination]:
        """Admins: each notification destination and how its deliveries stand."""
        request = pb.ListNotificationDestinationsRequest()
        response = self._call(self._stub.ListNotificationDestinations, request)
        return [destination_from_proto(d) for d in response.destinations]

    def explain_access(
        self,
        identity: str,
        instance_id: str,
        bucket: str,
        access: Access | str,
        *,
        prefix: str = "",
        ttl: timedelta | float | None = None,
        account: str = "",
        region: str = "",
    ) -> AccessDecision:
        """Whether `identity` would be allowed this grant now, and why (admins only)."""
        request = pb.ExplainAccessRequest(
            identity=identity,
            instance_id=instance_id,
            account=account,
            region=region,
            bucket=bucket,
            access=ACCESS_TO_PROTO[Access.parse(access)],
            prefix=prefix,
            ttl=ttl_to_proto(ttl),
        )
        return decision_from_proto(self._call(self._stub.ExplainAccess, request))


def _feed_start(call: object) -> int | None:
    """The event id the server says the stream starts after (waits for the stream's headers)."""
    metadata = call.initial_metadata() or ()  # type: ignore[attr-defined]
    for key, value in metadata:
        if key == FEED_START_METADATA and value.isdigit():
            return int(value)
    return None


def mutual_tls(ca: Path, certificate: Path, key: Path) -> grpc.ChannelCredentials:
    """`tls=` for a broker in mtls mode: its CA (PEM), and the caller's certificate and key."""
    credentials = tls_from_files(ca, certificate, key)
    assert credentials is not None, "every file is named"
    return credentials


# The variables tls_from_environment reads: the broker's CA, the caller's certificate and key.
TLS_VARIABLES = ("BROKER_TLS_CA", "BROKER_TLS_CERT", "BROKER_TLS_KEY")


def tls_from_files(
    ca: Path | None, certificate: Path | None, key: Path | None
) -> grpc.ChannelCredentials | None:
    """`tls=` from PEM files: the CA the broker's certificate is checked against (None: the
    system's), and for mtls the caller's certificate and key, both or neither. None when no
    file is named: plaintext. ValueError saying what is wrong when a file is missing or alone."""
    if (certificate is None) != (key is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    if ca is None and certificate is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_pem(ca),
        private_key=_pem(key),
        certificate_chain=_pem(certificate),
    )


def tls_from_environment(environ: Mapping[str, str] = os.environ) -> grpc.ChannelCredentials | None:
    """`tls=` from BROKER_TLS_CA, BROKER_TLS_CERT and BROKER_TLS_KEY (see tls_from_files)."""
    ca, certificate, key = (environ.get(name) or None for name in TLS_VARIABLES)
    return tls_from_files(*(Path(p) if p else None for p in (ca, certificate, key)))


def _pem(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None


def _open_channel(address: str, tls: bool | grpc.ChannelCredentials | None) -> grpc.Channel:
    options = [("grpc.service_config", _SERVICE_CONFIG), ("grpc.enable_retries", 1)]
    if tls is None or tls is False:
        return grpc.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials() if tls is True else tls
    return grpc.secure_channel(address, credentials, options=options)


def _new_key() -> str:
    return f"sdk-{uuid.uuid4()}"
