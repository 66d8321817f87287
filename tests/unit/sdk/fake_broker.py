"""A hand-written AccessBroker servicer that answers from a script and records every call."""

# ruff: noqa: N802 (servicer methods carry the RPC names of the proto)

import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from accessbroker.client import FEED_START_METADATA
from accessbroker.errors import ERROR_DOMAIN
from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc

M = TypeVar("M", bound=Message)
# Where gRPC carries a google.rpc.Status with its details.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class Abort:
    """Fail the call with this status, with a google.rpc.BadRequest when `violations`, and
    with a google.rpc.ErrorInfo in `domain` when `reason`.

    `status_details`, when given, is sent as the status details trailer instead, as it is: a
    broker or proxy that sends something the SDK cannot read."""

    code: grpc.StatusCode
    details: str = ""
    violations: Sequence[tuple[str, str]] = ()
    reason: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    domain: str = ERROR_DOMAIN
    status_details: bytes | None = None


@dataclass(frozen=True)
class Slow:
    """Answer `reply` after `seconds`."""

    seconds: float
    reply: Message


@dataclass(frozen=True)
class Stream:
    """For WatchAuditEvents: send `events`, then end the stream, or abort with `then`."""

    events: Sequence[pb.AuditEvent]
    then: Abort | None = None
    # The event id the stream says it starts after, in its initial metadata, as the broker does.
    start: int | None = None


Reply = Message | Abort | Slow | Stream


@dataclass(frozen=True)
class Call:
    request: Message
    metadata: Mapping[str, str]


@dataclass
class FakeBroker(broker_pb2_grpc.AccessBrokerServicer):
    """Each method answers with the replies queued for it in order; the last one repeats."""

    calls: dict[str, list[Call]] = field(default_factory=lambda: defaultdict(list))
    _script: dict[str, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, method: str, *replies: Reply) -> None:
        self._script[method].extend(replies)

    def requests(self, method: str, kind: type[M]) -> list[M]:
        """The requests `method` received, in order."""
        found = [call.request for call in self.calls[method]]
        assert all(isinstance(r, kind) for r in found)
        return [r for r in found if isinstance(r, kind)]

    def GrantAccess(
        self, request: pb.GrantAccessRequest, context: grpc.ServicerContext
    ) -> pb.GrantAccessResponse:
        return self._unary("GrantAccess", request, context, pb.GrantAccessResponse)

    def RevokeAccess(
        self, request: pb.RevokeAccessRequest, context: grpc.ServicerContext
    ) -> pb.RevokeAccessResponse:
        return self._unary("RevokeAccess", request, context, pb.RevokeAccessResponse)

    def ApproveGrant(
        self, request: pb.ApproveGrantRequest, context: grpc.ServicerContext
    ) -> pb.ApproveGrantResponse:
        return self._unary("ApproveGrant", request, context, pb.ApproveGrantResponse)

    def DenyGrant(self, request: pb.DenyGrantRequest, context: grpc.ServicerContext) -> pb.Grant:
        return self._unary("DenyGrant", request, context, pb.Grant)

    def ExtendGrant(
        self, request: pb.ExtendGrantRequest, context: grpc.ServicerContext
    ) -> pb.Grant:
        return self._unary("ExtendGrant", request, context, pb.Grant)

    def GetGrant(self, request: pb.GetGrantRequest, context: grpc.ServicerContext) -> pb.Grant:
        return self._unary("GetGrant", request, context, pb.Grant)

    def ListGrants(
        self, request: pb.ListGrantsRequest, context: grpc.ServicerContext
    ) -> pb.ListGrantsResponse:
        return self._unary("ListGrants", request, context, pb.ListGrantsResponse)

    def DescribeInstanceAccess(
        self, request: pb.DescribeInstanceAccessRequest, context: grpc.ServicerContext
    ) -> pb.InstanceAccess:
        return self._unary("DescribeInstanceAccess", request, context, pb.InstanceAccess)

    def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListAuditEventsResponse:
        return self._unary("ListAuditEvents", request, context, pb.ListAuditEventsResponse)

    def Reconcile(
        self, request: pb.ReconcileRequest, context: grpc.ServicerContext
    ) -> pb.ReconcileResponse:
        return self._unary("Reconcile", request, context, pb.ReconcileResponse)

    def ExplainAccess(
        self, request: pb.ExplainAccessRequest, context: grpc.ServicerContext
    ) -> pb.AccessDecision:
        return self._unary("ExplainAccess", request, context, pb.AccessDecision)

    def WatchAuditEvents(
        self, request: pb.WatchAuditEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.AuditEvent]:
        reply = self._next("WatchAuditEvents", request, context)
        if isinstance(reply, Abort):
            _abort(context, reply)
        assert isinstance(reply, Stream), f"WatchAuditEvents cannot answer {reply!r}"
        if reply.start is not None:
            context.send_initial_metadata(((FEED_START_METADATA, str(reply.start)),))
        yield from reply.events
        if reply.then is not None:
            _abort(context, reply.then)

    def ListNotificationDestinations(
        self, request: pb.ListNotificationDestinationsRequest, context: grpc.ServicerContext
    ) -> pb.ListNotificationDestinationsResponse:
        return self._unary(
            "ListNotificationDestinations",
            request,
            context,
            pb.ListNotificationDestinationsResponse,
        )

    def _unary(
        self, method: str, request: Message, context: grpc.ServicerContext, kind: type[M]
    ) -> M:
        reply = self._next(method, request, context)
        if isinstance(reply, Slow):
            time.sleep(reply.seconds)
            reply = reply.reply
        if isinstance(reply, Abort):
            _abort(context, reply)
        assert isinstance(reply, kind), f"{method} cannot answer {reply!r}"
        return reply

    def _next(self, method: str, request: Message, context: grpc.ServicerContext) -> Reply:
        with self._lock:
            metadata = {key: str(value) for key, value in context.invocation_metadata()}
            self.calls[method].append(Call(request, metadata))
            script = self._script[method]
            if not script:
                return Abort(grpc.StatusCode.UNIMPLEMENTED, f"no reply scripted for {method}")
            return script.popleft() if len(script) > 1 else script[0]


def _abort(context: grpc.ServicerContext, reply: Abort) -> None:
    if reply.status_details is not None:
        context.set_trailing_metadata(((STATUS_DETAILS_KEY, reply.status_details),))
        context.abort(reply.code, reply.details)
    details: list[Message] = []
    if reply.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=name, description=text)
                    for name, text in reply.violations
                ]
            )
        )
    if reply.reason:
        details.append(
            error_details_pb2.ErrorInfo(
                reason=reply.reason, domain=reply.domain, metadata=dict(reply.metadata)
            )
        )
    if not details:
        context.abort(reply.code, reply.details)
    status = status_pb2.Status(code=reply.code.value[0], message=reply.details)
    for detail in details:
        status.details.add().Pack(detail)
    context.abort_with_status(rpc_status.to_status(status))
