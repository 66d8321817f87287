"""Reading a failed gRPC call: its status code, message, BadRequest field violations and the
ErrorInfo reason the broker sends with every refusal."""

from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from broker.domain.errors import ERROR_DOMAIN


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    message: str
    violations: dict[str, str]
    # "" when the status carries no ErrorInfo of the broker's (an unexpected INTERNAL).
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def refusal(call: Callable[[], object]) -> Refusal:
    """The error status of a call that must fail, with its BadRequest field violations and
    the reason and metadata of its ErrorInfo."""
    try:
        call()
    except grpc.RpcError as error:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        violations: dict[str, str] = {}
        reason, metadata = "", {}
        for detail in status.details if status else ():
            bad_request = error_details_pb2.BadRequest()
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(bad_request):
                violations |= {v.field: v.description for v in bad_request.field_violations}
            elif detail.Unpack(info):
                assert info.domain == ERROR_DOMAIN, f"an ErrorInfo of {info.domain!r}"
                assert not reason, "one ErrorInfo per status"
                reason, metadata = info.reason, dict(info.metadata)
        return Refusal(error.code(), error.details() or "", violations, reason, metadata)
    raise AssertionError("the call succeeded but was expected to fail")
