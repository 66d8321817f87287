"""Authentication of every AccessBroker call: a bearer token, a client certificate, or nobody.

The interceptor runs each call (and each step of a stream) in a context holding the caller's
identity, so `authenticated_caller()` answers on whichever worker thread runs it. Health and
reflection stay open. A refusal is UNAUTHENTICATED and never repeats what the caller sent.

A caller may act on behalf of a person it names in the `x-accessbroker-on-behalf-of` metadata
(the web app does): the call is then the person's, and `acting_delegate()` names the caller.
Whether that caller may do so is the access policy's to decide (its `delegates`), in the
service layer, which refuses and audits it otherwise.
"""

import contextvars
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import grpc

from broker.domain.audit import ANONYMOUS_ACTOR
from broker.domain.authorization import credential_identity_problems
from broker.domain.credentials import StoredToken
from broker.domain.errors import FieldViolation, InvalidRequest, Unauthenticated
from broker.entrypoints.grpc.errors import abort_with
from broker.entrypoints.grpc.interceptors import ServerInterceptorBase, rewrapped
from broker.entrypoints.logs import note

log = logging.getLogger(__name__)

_BEARER = "bearer "
# gRPC's names for the peer certificate's URI SANs and subject CN in the auth context.
_URI_SANS = "peer_uri"
_COMMON_NAME = "x509_common_name"
_CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("accessbroker_caller")
_DELEGATE: contextvars.ContextVar[str] = contextvars.ContextVar("accessbroker_via", default="")
ON_BEHALF_OF = "x-accessbroker-on-behalf-of"


def authenticated_caller() -> str:
    """The identity of the caller of the call being served."""
    try:
        return _CALLER.get()
    except LookupError:
        raise RuntimeError("no authenticated caller: the call bypassed AuthInterceptor") from None


def acting_delegate() -> str:
    """The authenticated caller when it acts on behalf of the caller `authenticated_caller()`
    names; "" when the caller acts for itself."""
    return _DELEGATE.get()


class Authenticator(Protocol):
    def identify(self, context: grpc.ServicerContext) -> str:
        """The caller's identity; raises Unauthenticated."""
        ...


class Anonymous:
    """Auth mode none: every caller is "anonymous"."""

    def identify(self, context: grpc.ServicerContext) -> str:
        return ANONYMOUS_ACTOR


class BearerTokens:
    """Auth mode token: `authorization: Bearer <token>`, whose SHA-256 digest is listed."""

    def __init__(self, tokens: Sequence[StoredToken]) -> None:
        self._lock = threading.Lock()
        self._tokens = tuple(tokens)

    def replace(self, tokens: Sequence[StoredToken]) -> None:
        with self._lock:
            self._tokens = tuple(tokens)

    def identify(self, context: grpc.ServicerContext) -> str:
        digest = hashlib.sha256(_bearer_token(context).encode()).digest()
        with self._lock:
            tokens = self._tokens
        found = None
        # Every digest is compared, in constant time, so the time taken tells nothing.
        for stored in tokens:
            if hmac.compare_digest(stored.sha256, digest):
                found = stored.identity
        if found is None:
            raise Unauthenticated("the bearer token is not valid")
        return found


def _bearer_token(context: grpc.ServicerContext) -> str:
    values = [v for k, v in context.invocation_metadata() if k == "authorization"]
    if not values:
        raise Unauthenticated("no credentials: send the metadata `authorization: Bearer <token>`")
    value = values[0]
    if len(values) > 1 or not isinstance(value, str) or not value.lower().startswith(_BEARER):
        raise Unauthenticated("the authorization metadata must be one `Bearer <token>`")
    token = value[len(_BEARER) :].strip()
    if not token:
        raise Unauthenticated("the bearer token is empty")
    return token


class ClientCertificates:
    """Auth mode mtls: gRPC has verified the certificate against the client CA; the identity is
    its URI SAN (a SPIFFE id, say), or else its subject CN."""

    def identify(self, context: grpc.ServicerContext) -> str:
        uris = _peer_property(context, _URI_SANS)
        if len(uris) > 1:
            raise Unauthenticated("the client certificate has several URI SANs; it needs one")
        names = uris or _peer_property(context, _COMMON_NAME)
        if not names:
            raise Unauthenticated("the client certificate has neither a URI SAN nor a subject CN")
        try:
            identity = names[0].decode("utf-8")
        except UnicodeDecodeError:
            # Replacing bad bytes could make two certificates' names one identity.
            raise Unauthenticated("the client certificate's identity is not UTF-8") from None
        if credential_identity_problems(identity):
            raise Unauthenticated("the client certificate's identity is not usable")
        return identity


def _peer_property(context: grpc.ServicerContext, name: str) -> list[bytes]:
    # grpc-stubs says one value per name; gRPC gives a list of them.
    values: Any = context.auth_context().get(name)
    # A certificate without a CN has an empty one here.
    return [value for value in values or () if value]


class AuthInterceptor(ServerInterceptorBase):
    """Authenticates every call except to `open_services` (health, reflection)."""

    def __init__(self, authenticator: Authenticator, open_services: frozenset[str]) -> None:
        self._authenticator = authenticator
        self._open_services = open_services

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], "grpc.RpcMethodHandler[Any, Any] | None"],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> "grpc.RpcMethodHandler[Any, Any] | None":
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.split("/")[1] in self._open_services:
            return handler
        authenticated = rewrapped(
            handler,
            unary=lambda behavior: self._unary(behavior, method),
            stream=lambda behavior: self._stream(behavior, method),
        )
        if authenticated is None:
            # Fails closed: gRPC answers a handler that raises here with an error, never the call.
            raise NotImplementedError(f"{method}: only unary requests are authenticated")
        return authenticated

    def _unary(
        self, behavior: Callable[[Any, grpc.ServicerContext], Any], method: str
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def authenticated(request: Any, context: grpc.ServicerContext) -> Any:
            return self._caller(context, method).run(behavior, request, context)

        return authenticated

    def _stream(
        self, behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]], method: str
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def authenticated(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            caller = self._caller(context, method)
            responses = caller.run(behavior, request, context)
            # Each step in the caller's context: a step may run on another thread than the last.
            try:
                while True:
                    try:
                        response = caller.run(next, responses)
                    except StopIteration:
                        return
                    # Credentials may be withdrawn (a reloaded tokens file) while a stream is
                    # open: each message goes only to a caller who still proves who it was.
                    self._still_the_caller(caller, context, method)
                    yield response
            finally:
                # A cancelled call must release what the stream holds now, not when collected.
                close = getattr(responses, "close", None)
                if close is not None:
                    caller.run(close)

        return authenticated

    def _still_the_caller(
        self, caller: contextvars.Context, context: grpc.ServicerContext, method: str
    ) -> None:
        now = self._caller(context, method).run(authenticated_caller)
        if now != caller.run(authenticated_caller):
            error = Unauthenticated("the credentials now prove another identity")
            abort_with(context, error)

    def _caller(self, context: grpc.ServicerContext, method: str) -> contextvars.Context:
        """A context holding the caller's identity; ends the call when there is none."""
        try:
            identity = self._authenticator.identify(context)
        except Unauthenticated as error:
            log.warning("%s from %s refused: %s", method, context.peer(), error)
            abort_with(context, error)
        caller = contextvars.copy_context()
        person = _person_named(context)
        if person is None:
            note(identity=identity)
            caller.run(_CALLER.set, identity)
            return caller
        if problems := credential_identity_problems(person):
            violation = FieldViolation(ON_BEHALF_OF, "; ".join(problems))
            abort_with(context, InvalidRequest([violation]))
        note(identity=person, via=identity)
        caller.run(_CALLER.set, person)
        caller.run(_DELEGATE.set, identity)
        return caller


def _person_named(context: grpc.ServicerContext) -> str | None:
    """The person the caller says it acts for, if it says so."""
    named = [str(v) for k, v in context.invocation_metadata() if k == ON_BEHALF_OF]
    return named[0] if named else None
