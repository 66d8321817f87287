"""What the server's interceptors share: their base class, and wrapping a method's behavior
while keeping its (de)serializers."""

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc

# The base of the server's interceptors. grpc-stubs makes it generic; at run time it is not.
if TYPE_CHECKING:
    ServerInterceptorBase = grpc.ServerInterceptor[Any, Any]
else:
    ServerInterceptorBase = grpc.ServerInterceptor

Unary = Callable[[Any, grpc.ServicerContext], Any]
Stream = Callable[[Any, grpc.ServicerContext], Iterator[Any]]
Deserializer = Callable[[bytes], Any] | None


def rewrapped(
    handler: "grpc.RpcMethodHandler[Any, Any]",
    *,
    unary: Callable[[Unary], Unary],
    stream: Callable[[Stream], Stream],
    deserializer: Callable[[Deserializer], Deserializer] = lambda given: given,
) -> "grpc.RpcMethodHandler[Any, Any] | None":
    """The handler with its behavior wrapped by `unary` (a unary method) or `stream` (a
    server-streaming one), and its request deserializer by `deserializer`; None for a method of
    another kind (the broker serves none)."""
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary),
            request_deserializer=deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream(handler.unary_stream),
            request_deserializer=deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    return None


class WrappingInterceptor(ServerInterceptorBase):
    """An interceptor that wraps the behavior of every unary and server-streaming method;
    methods of other kinds (the broker serves none) pass through unchanged."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], "grpc.RpcMethodHandler[Any, Any] | None"],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> "grpc.RpcMethodHandler[Any, Any] | None":
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        wrapped = rewrapped(
            handler,
            unary=lambda behavior: self.unary(behavior, method),
            stream=lambda behavior: self.stream(behavior, method),
            deserializer=self.deserializer,
        )
        return wrapped or handler

    def unary(self, behavior: Unary, method: str) -> Unary:
        raise NotImplementedError

    def stream(self, behavior: Stream, method: str) -> Stream:
        raise NotImplementedError

    def deserializer(self, given: Deserializer) -> Deserializer:
        return given
