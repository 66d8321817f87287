"""Every call's request id and access-log line.

The request id is the caller's `x-request-id` metadata when it sends a usable one, else a new
one; it is returned in the response's trailing metadata (errors' included: see errors.py) and
carried by every log line written for the call. When the call ends, one line on the
`accessbroker.access` logger says its method, code, duration and caller.
"""

import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import grpc

from broker.entrypoints.grpc.interceptors import Stream, Unary, WrappingInterceptor
from broker.entrypoints.logs import call_context

REQUEST_ID = "x-request-id"
# A caller's request id is kept when it is this plain: it ends up in logs and metadata.
_USABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access = logging.getLogger("accessbroker.access")


class AccessLogInterceptor(WrappingInterceptor):
    def unary(self, behavior: Unary, method: str) -> Unary:
        return _unary(behavior, method)

    def stream(self, behavior: Stream, method: str) -> Stream:
        return _stream(behavior, method)


def _unary(behavior: Unary, method: str) -> Unary:
    def logged(request: Any, context: grpc.ServicerContext) -> Any:
        with call_context(**_start(context, method)) as fields:
            started = time.perf_counter()
            try:
                return behavior(request, context)
            finally:
                _log(context, fields, started)

    return logged


def _stream(behavior: Stream, method: str) -> Stream:
    def logged(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with call_context(**_start(context, method)) as fields:
            started = time.perf_counter()
            try:
                yield from behavior(request, context)
            finally:
                _log(context, fields, started)

    return logged


def _start(context: grpc.ServicerContext, method: str) -> dict[str, str]:
    given = [v for k, v in context.invocation_metadata() if k == REQUEST_ID]
    request_id = given[0] if given and _USABLE.fullmatch(str(given[0])) else uuid.uuid4().hex
    context.set_trailing_metadata(((REQUEST_ID, str(request_id)),))
    return {"request_id": str(request_id), "grpc_method": method}


def _log(context: grpc.ServicerContext, fields: dict[str, str], started: float) -> None:
    # abort() sets the code, success leaves it unset. (grpc-stubs lacks code(), grpc has it.)
    code = cast(Any, context).code() or grpc.StatusCode.OK
    milliseconds = round((time.perf_counter() - started) * 1000, 1)
    access.info(
        "%s %s %.1f ms",
        fields["grpc_method"],
        code.name,
        milliseconds,
        extra={"grpc_code": code.name, "duration_ms": milliseconds},
    )
