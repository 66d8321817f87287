"""One place that turns exceptions into gRPC statuses; nothing else in the server catches them."""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from broker.domain.errors import (
    ERROR_DOMAIN,
    AwsQuotaExceeded,
    AwsRejected,
    AwsUnavailable,
    BrokerError,
    DeadlineExceeded,
    FieldViolation,
    ForeignProfile,
    ForeignRole,
    GrantNotFound,
    IdempotencyConflict,
    InstanceNotFound,
    InvalidRequest,
    OutsideBoundary,
    PermissionDenied,
    PolicyTooLarge,
    StoreUnavailable,
    TooManyStreams,
    Unauthenticated,
    WrongState,
)
from broker.entrypoints.grpc.interceptors import Deserializer, Stream, Unary, WrappingInterceptor

log = logging.getLogger(__name__)

_CODES: dict[type[BrokerError], int] = {
    InvalidRequest: code_pb2.INVALID_ARGUMENT,
    InstanceNotFound: code_pb2.NOT_FOUND,
    GrantNotFound: code_pb2.NOT_FOUND,
    ForeignProfile: code_pb2.FAILED_PRECONDITION,
    ForeignRole: code_pb2.FAILED_PRECONDITION,
    OutsideBoundary: code_pb2.FAILED_PRECONDITION,
    WrongState: code_pb2.FAILED_PRECONDITION,
    PolicyTooLarge: code_pb2.RESOURCE_EXHAUSTED,
    TooManyStreams: code_pb2.RESOURCE_EXHAUSTED,
    AwsQuotaExceeded: code_pb2.RESOURCE_EXHAUSTED,
    IdempotencyConflict: code_pb2.ALREADY_EXISTS,
    AwsUnavailable: code_pb2.UNAVAILABLE,
    StoreUnavailable: code_pb2.UNAVAILABLE,
    DeadlineExceeded: code_pb2.DEADLINE_EXCEEDED,
    # The broker's own permissions or AWS's rules refused a change: a fault of the broker's
    # set-up, not of the request. The message names only the AWS action and error code.
    AwsRejected: code_pb2.INTERNAL,
    Unauthenticated: code_pb2.UNAUTHENTICATED,
    PermissionDenied: code_pb2.PERMISSION_DENIED,
}
INTERNAL_MESSAGE = "internal error; the broker's log has the details"


def status_for(error: BrokerError) -> grpc.Status:
    """The error's status: its code and message, a google.rpc.ErrorInfo naming its reason, and
    for an invalid request the google.rpc.BadRequest listing every field violation."""
    status = status_pb2.Status(code=_CODES.get(type(error), code_pb2.INTERNAL), message=str(error))
    if isinstance(error, InvalidRequest):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        status.details.add().Pack(bad_request)
    # After the BadRequest, so a reader that takes the first detail still finds what it did.
    if error.reason:  # a bare BrokerError has none, and claims none
        info = error_details_pb2.ErrorInfo(
            reason=error.reason, domain=ERROR_DOMAIN, metadata=dict(error.metadata)
        )
        status.details.add().Pack(info)
    result: grpc.Status = rpc_status.to_status(status)
    return result


class ErrorInterceptor(WrappingInterceptor):
    """Answers broker errors with their status, and anything unexpected with a generic INTERNAL."""

    def unary(self, behavior: Unary, method: str) -> Unary:
        return _guarded(behavior, method)

    def stream(self, behavior: Stream, method: str) -> Stream:
        return _guarded_stream(behavior, method)

    def deserializer(self, given: Deserializer) -> Deserializer:
        return _tolerant(given)


class _Undecodable:
    """Stands in for a request whose bytes are not a valid message (e.g. a string that is not
    UTF-8), so the call is answered INVALID_ARGUMENT rather than by gRPC's own INTERNAL."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _tolerant(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    parse = deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as error:  # any failure to decode is the caller's
            return _Undecodable(str(error) or type(error).__name__)

    return deserialize


def _refuse_undecodable(request: Any) -> None:
    if isinstance(request, _Undecodable):
        raise InvalidRequest(
            [FieldViolation("request", f"is not a valid message: {request.problem}"[:300])]
        )


def _guarded(
    behavior: Callable[[Any, grpc.ServicerContext], Any], method: str
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            _refuse_undecodable(request)
            return behavior(request, context)
        except Exception as error:
            _abort(context, method, error)

    return guarded


def _guarded_stream(
    behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]], method: str
) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            _refuse_undecodable(request)
            yield from behavior(request, context)
        except Exception as error:
            _abort(context, method, error)

    return guarded


def _abort(context: grpc.ServicerContext, method: str, error: Exception) -> NoReturn:
    """Ends the call with the error's status; unexpected errors are logged, never shown.

    An unexpected error carries no ErrorInfo: INTERNAL without a reason is how a caller tells
    "the broker failed" from a known refusal answered INTERNAL (AWS_REJECTED, say)."""
    if isinstance(error, BrokerError):
        log.info("%s refused: %s", method, error)
        abort_with(context, error)
    log.error("%s failed unexpectedly", method, exc_info=error)
    context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


def abort_with(context: grpc.ServicerContext, error: BrokerError) -> NoReturn:
    """Ends the call with the error's status, keeping the trailing metadata the call set
    already (its request id), which aborting with a status would otherwise replace."""
    status = status_for(error)
    # grpc-stubs lacks trailing_metadata(); grpc's servicer context has it.
    kept = tuple(cast(Any, context).trailing_metadata() or ())
    context.abort_with_status(
        _Status(status.code, status.details, (*kept, *status.trailing_metadata))
    )


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]
