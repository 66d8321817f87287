"""Errors the broker answers with, one class per gRPC status a caller can act on.

Within a class, `reason` says which refusal it is (a FailedPrecondition is a FOREIGN_PROFILE
or a WRONG_STATE, say): the broker sends it as google.rpc.ErrorInfo. docs/errors.md lists them.
"""

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import grpc
from google.protobuf.any_pb2 import Any
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

# The ErrorInfo domain of the broker's reasons. The broker defines it (broker/domain/errors.py),
# and the SDK may not import the broker: a unit test holds the two equal.
ERROR_DOMAIN = "accessbroker.dev"

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class BrokerError(Exception):
    """Anything the broker refused or could not do; `str()` says what in words.

    `reason` is the broker's machine-readable name for it (e.g. "FOREIGN_PROFILE"), "" when the
    broker sent none (an unexpected failure, or an error raised by the SDK itself); `metadata`
    holds the facts the broker sent with the reason (e.g. "profileArn")."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self, message: str, *, reason: str = "", metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})


class FieldViolation(NamedTuple):
    field: str
    description: str


class InvalidArgument(BrokerError):
    """The request was malformed.

    `field_violations` lists every problem in the order the broker gave them, several for one
    field when it has several; `violations` maps each bad field to its problems joined by "; "."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(
        self,
        message: str,
        violations: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        *,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        pairs = violations.items() if isinstance(violations, Mapping) else violations or ()
        self.field_violations = [FieldViolation(field, why) for field, why in pairs]
        joined: dict[str, list[str]] = {}
        for field, why in self.field_violations:
            joined.setdefault(field, []).append(why)
        # Kept a dict of strings, as it always was, so code that reads one problem per field
        # still works; a field with several problems gets them all, in order.
        self.violations = {field: "; ".join(whys) for field, whys in joined.items()}


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
    """The BrokerError for a failed call, with the server's message, reason and violations."""
    code: grpc.StatusCode = error.code()
    message = error.details() or code.name.lower().replace("_", " ")
    details = _status_details(error)
    reason, metadata = _error_info(details)
    cls = _BY_CODE.get(code, BrokerError)
    if cls is InvalidArgument:
        return InvalidArgument(
            message, _field_violations(details), reason=reason, metadata=metadata
        )
    if cls is BrokerError:
        return BrokerError(f"{code.name}: {message}", reason=reason, metadata=metadata)
    return cls(message, reason=reason, metadata=metadata)


def _status_details(error: grpc.RpcError) -> list[Any]:
    """The google.rpc.Status details the call's trailers carry, [] when they carry none.

    Read leniently: a detail the SDK cannot decode costs the reason, never the error itself."""
    # Every failed call the SDK makes is a grpc.Call; a bare RpcError has no trailers to read.
    trailers: grpc.Metadata = (
        (error.trailing_metadata() or ()) if isinstance(error, grpc.Call) else ()
    )
    for key, value in trailers:
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return list(status_pb2.Status.FromString(value).details)
            except DecodeError:
                return []
    return []


def _error_info(details: Iterable[Any]) -> tuple[str, dict[str, str]]:
    """The reason and metadata of the broker's ErrorInfo; one from another domain (a proxy's,
    say) is not the broker's and is passed over."""
    for detail in details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
            return info.reason, dict(info.metadata)
    return "", {}


def _field_violations(details: Iterable[Any]) -> list[tuple[str, str]]:
    violations: list[tuple[str, str]] = []
    for detail in details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            violations += [(v.field, v.description) for v in bad_request.field_violations]
    return violations
