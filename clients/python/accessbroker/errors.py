"""Errors the broker answers with, one class per gRPC status a caller can act on."""

from collections.abc import Mapping

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class BrokerError(Exception):
    """Anything the broker refused or could not do; `str()` says what in words."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(BrokerError):
    """The request was malformed; `violations` maps each bad field to what is wrong with it."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, violations: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.violations = dict(violations or {})


class NotFound(BrokerError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(BrokerError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class AlreadyExists(BrokerError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(BrokerError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(BrokerError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(BrokerError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(BrokerError):
    """The broker, or AWS behind it, could not be reached; retrying later may succeed."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(BrokerError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Internal(BrokerError):
    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[BrokerError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        FailedPrecondition,
        AlreadyExists,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Internal,
    )
}


def error_from_rpc(error: grpc.RpcError) -> BrokerError:
    """The BrokerError for a failed call, with the server's message and field violations."""
    code: grpc.StatusCode = error.code()
    message = error.details() or code.name.lower().replace("_", " ")
    cls = _BY_CODE.get(code, BrokerError)
    if cls is InvalidArgument:
        return InvalidArgument(message, _field_violations(error))
    if cls is BrokerError:
        return BrokerError(f"{code.name}: {message}")
    return cls(message)


def _field_violations(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    violations: dict[str, str] = {}
    for detail in status.details if status else ():
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            for violation in bad_request.field_violations:
                violations.setdefault(violation.field, violation.description)
    return violations
