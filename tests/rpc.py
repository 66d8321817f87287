"""Reading a failed gRPC call: its status code, message and BadRequest field violations."""

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    message: str
    violations: dict[str, str]


def refusal(call: Callable[[], object]) -> Refusal:
    """The error status of a call that must fail, with its BadRequest field violations."""
    try:
        call()
    except grpc.RpcError as error:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        violations: dict[str, str] = {}
        for detail in status.details if status else ():
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                violations |= {v.field: v.description for v in bad_request.field_violations}
        return Refusal(error.code(), error.details() or "", violations)
    raise AssertionError("the call succeeded but was expected to fail")
