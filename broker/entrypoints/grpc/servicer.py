"""The AccessBroker service: protobuf in, use case, protobuf out. Errors are the interceptor's."""

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import TypeVar

import grpc

from accessbroker.v1 import broker_pb2 as pb
from accessbroker.v1 import broker_pb2_grpc
from broker.domain.errors import TooManyStreams
from broker.domain.grants import Grant
from broker.entrypoints.grpc.auth import acting_delegate, authenticated_caller
from broker.entrypoints.grpc.mapping import (
    access_from_proto,
    decision_to_proto,
    decode_page_token,
    destination_to_proto,
    encode_page_token,
    event_to_proto,
    finding_to_proto,
    grant_to_proto,
    state_from_proto,
    ttl_from_proto,
)
from broker.entrypoints.logs import note
from broker.service.commands import (
    ApproveGrant,
    Command,
    DenyGrant,
    DescribeInstanceAccess,
    ExplainAccess,
    ExtendGrant,
    GetGrant,
    GrantAccess,
    ListAuditEvents,
    ListDeliveries,
    ListGrants,
    Reconcile,
    RevokeAccess,
    WatchAuditEvents,
)
from broker.service.deadlines import deadline_in
from broker.service.messagebus import MessageBus

Result = TypeVar("Result")

GRANTS_TOKEN = "grants"
AUDIT_TOKEN = "audit"
# How often a caught-up audit feed looks for new events.
FEED_POLL_SECONDS = 0.25
# Audit streams served at once; the rest of the workers stay free for ordinary calls.
MAX_STREAMS = 8
# Initial metadata of an audit stream: the event id it starts after, so a follower that loses
# the stream before its first event still knows where to resume.
FEED_START_METADATA = "x-accessbroker-feed-start"
# The broker stops working this much before the caller's deadline (at most a fifth of the time
# left), so that its own DEADLINE_EXCEEDED, saying what became of the request, arrives in time:
# recording the postponement and answering take a moment, longer on a busy host.
DEADLINE_MARGIN_SECONDS = 2.0
# gRPC reports a call without a deadline as some 2**63 seconds left.
_NO_DEADLINE_SECONDS = 1e9


def callers_deadline(context: grpc.ServicerContext) -> AbstractContextManager[None]:
    """Within the block, AWS retries stop short of the caller's deadline (if it set one)."""
    remaining = context.time_remaining()
    if remaining is None or remaining >= _NO_DEADLINE_SECONDS:
        return deadline_in(None)
    return deadline_in(remaining - min(DEADLINE_MARGIN_SECONDS, remaining / 5))


def caller_identity(context: grpc.ServicerContext) -> str:
    """Who is calling: the identity AuthInterceptor authenticated for this call."""
    return authenticated_caller()


class StreamSlots:
    """A bounded number of places for long-lived streams."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._free = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            raise TooManyStreams(self._limit)
        try:
            yield
        finally:
            self._free.release()


class AccessBrokerServicer(broker_pb2_grpc.AccessBrokerServicer):
    """Each RPC: protobuf in, one command through the bus (within the caller's deadline),
    protobuf out."""

    def __init__(
        self, bus: MessageBus, stopping: threading.Event, max_streams: int = MAX_STREAMS
    ) -> None:
        self._bus = bus
        # Set when the server shuts down: endless streams end so the shutdown can finish.
        self._stopping = stopping
        # Each stream holds a worker thread for as long as its follower stays.
        self._streams = StreamSlots(max_streams)

    def _handle(self, command: Command[Result], context: grpc.ServicerContext) -> Result:
        if delegate := acting_delegate():
            command = replace(command, via=delegate)
        # The log lines of the call name what it is about.
        note(
            grant_id=str(getattr(command, "grant_id", "")),
            instance_id=str(getattr(command, "instance_id", "")),
        )
        with callers_deadline(context):
            result = self._bus.handle(command)
        grant = getattr(result, "grant", None)
        if isinstance(grant, Grant):
            note(grant_id=grant.grant_id, instance_id=grant.instance_id)
        return result

    def GrantAccess(
        self, request: pb.GrantAccessRequest, context: grpc.ServicerContext
    ) -> pb.GrantAccessResponse:
        command = GrantAccess(
            instance_id=request.instance_id,
            account=request.account,
            region=request.region,
            bucket=request.bucket,
            access=access_from_proto(request.access),
            prefix=request.prefix,
            ttl=ttl_from_proto(request),
            reason=request.reason,
            idempotency_key=request.idempotency_key,
            dry_run=request.dry_run,
            actor=caller_identity(context),
        )
        result = self._handle(command, context)
        return pb.GrantAccessResponse(
            grant=grant_to_proto(result.grant),
            policy_document=result.policy_document,
            planned_changes=list(result.planned_changes),
            covered_by=result.covered_by,
        )

    def ApproveGrant(
        self, request: pb.ApproveGrantRequest, context: grpc.ServicerContext
    ) -> pb.ApproveGrantResponse:
        command = ApproveGrant(
            grant_id=request.grant_id,
            reason=request.reason,
            ttl=ttl_from_proto(request),
            actor=caller_identity(context),
        )
        result = self._handle(command, context)
        return pb.ApproveGrantResponse(
            grant=grant_to_proto(result.grant),
            policy_document=result.policy_document,
            notice=result.notice,
        )

    def DenyGrant(self, request: pb.DenyGrantRequest, context: grpc.ServicerContext) -> pb.Grant:
        command = DenyGrant(
            grant_id=request.grant_id, reason=request.reason, actor=caller_identity(context)
        )
        return grant_to_proto(self._handle(command, context))

    def RevokeAccess(
        self, request: pb.RevokeAccessRequest, context: grpc.ServicerContext
    ) -> pb.RevokeAccessResponse:
        command = RevokeAccess(
            grant_id=request.grant_id,
            reason=request.reason,
            idempotency_key=request.idempotency_key,
            actor=caller_identity(context),
        )
        return pb.RevokeAccessResponse(grant=grant_to_proto(self._handle(command, context).grant))

    def ExtendGrant(
        self, request: pb.ExtendGrantRequest, context: grpc.ServicerContext
    ) -> pb.Grant:
        command = ExtendGrant(
            grant_id=request.grant_id,
            ttl=ttl_from_proto(request),
            reason=request.reason,
            actor=caller_identity(context),
        )
        return grant_to_proto(self._handle(command, context))

    def GetGrant(self, request: pb.GetGrantRequest, context: grpc.ServicerContext) -> pb.Grant:
        command = GetGrant(grant_id=request.grant_id, actor=caller_identity(context))
        return grant_to_proto(self._handle(command, context))

    def ListGrants(
        self, request: pb.ListGrantsRequest, context: grpc.ServicerContext
    ) -> pb.ListGrantsResponse:
        command = ListGrants(
            instance_id=request.instance_id,
            account=request.account,
            region=request.region,
            bucket=request.bucket,
            state=state_from_proto(request.state),
            awaiting_my_approval=request.awaiting_my_approval,
            page_size=request.page_size,
            after=decode_page_token(GRANTS_TOKEN, request.page_token),
            actor=caller_identity(context),
        )
        page = self._handle(command, context)
        return pb.ListGrantsResponse(
            grants=[grant_to_proto(g) for g in page.items],
            next_page_token=encode_page_token(GRANTS_TOKEN, page.next_cursor),
        )

    def DescribeInstanceAccess(
        self, request: pb.DescribeInstanceAccessRequest, context: grpc.ServicerContext
    ) -> pb.InstanceAccess:
        command = DescribeInstanceAccess(
            instance_id=request.instance_id,
            account=request.account,
            region=request.region,
            actor=caller_identity(context),
        )
        access = self._handle(command, context)
        return pb.InstanceAccess(
            instance_id=access.instance.instance_id,
            account=access.instance.place.account,
            region=access.instance.place.region,
            role_name=access.resources.role_name,
            role_arn=access.resources.role_arn,
            instance_profile_name=access.resources.profile_name,
            instance_profile_arn=access.resources.profile_arn,
            association_id=access.resources.association_id,
            policy_document=access.policy_document,
            grants=[grant_to_proto(g) for g in access.grants],
        )

    def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListAuditEventsResponse:
        command = ListAuditEvents(
            instance_id=request.instance_id,
            account=request.account,
            region=request.region,
            grant_id=request.grant_id,
            page_size=request.page_size,
            after=decode_page_token(AUDIT_TOKEN, request.page_token),
            actor=caller_identity(context),
        )
        page = self._handle(command, context)
        return pb.ListAuditEventsResponse(
            events=[event_to_proto(e) for e in page.items],
            next_page_token=encode_page_token(AUDIT_TOKEN, page.next_cursor),
        )

    def WatchAuditEvents(
        self, request: pb.WatchAuditEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.AuditEvent]:
        def idle() -> bool:
            self._stopping.wait(FEED_POLL_SECONDS)
            return context.is_active() and not self._stopping.is_set()

        command = WatchAuditEvents(
            instance_id=request.instance_id,
            account=request.account,
            region=request.region,
            after=request.after_event_id if request.HasField("after_event_id") else None,
            actor=caller_identity(context),
            # Sent to the bus directly (not through _handle): the delegate is named here.
            via=acting_delegate(),
        )
        with self._streams.slot():
            feed = self._bus.handle(command)
            context.send_initial_metadata(((FEED_START_METADATA, str(feed.start)),))
            for event in feed.follow(idle):
                yield event_to_proto(event)

    def Reconcile(
        self, request: pb.ReconcileRequest, context: grpc.ServicerContext
    ) -> pb.ReconcileResponse:
        command = Reconcile(
            instance_id=request.instance_id,
            account=request.account,
            region=request.region,
            dry_run=request.dry_run,
            actor=caller_identity(context),
        )
        findings = self._handle(command, context)
        return pb.ReconcileResponse(drifts=[finding_to_proto(f) for f in findings])

    def ListNotificationDestinations(
        self, request: pb.ListNotificationDestinationsRequest, context: grpc.ServicerContext
    ) -> pb.ListNotificationDestinationsResponse:
        statuses = self._handle(ListDeliveries(actor=caller_identity(context)), context)
        return pb.ListNotificationDestinationsResponse(
            destinations=[destination_to_proto(status) for status in statuses]
        )

    def ExplainAccess(
        self, request: pb.ExplainAccessRequest, context: grpc.ServicerContext
    ) -> pb.AccessDecision:
        command = ExplainAccess(
            identity=request.identity,
            instance_id=request.instance_id,
            account=request.account,
            region=request.region,
            bucket=request.bucket,
            access=access_from_proto(request.access),
            prefix=request.prefix,
            ttl=ttl_from_proto(request),
            actor=caller_identity(context),
        )
        return decision_to_proto(self._handle(command, context))
