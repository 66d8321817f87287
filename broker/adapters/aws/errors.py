"""The one translation of botocore failures into the broker's domain errors.

By the time an error reaches this module the adapter's retry policy (retry.py) has retried
throttling, 5xx and connection errors within their budgets, so those mean AWS is unavailable
*now*; anything else is a refusal that retrying will not fix.
"""

import logging

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from broker.domain.errors import AwsQuotaExceeded, AwsRejected, AwsUnavailable

log = logging.getLogger(__name__)

THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded"})
# Failures that say nothing about the request itself. A ResponseParserError is an unreadable
# answer (e.g. a proxy's HTML error page); botocore raises it outside its own hierarchy.
_UNAVAILABLE_ERRORS = (
    EndpointConnectionError,
    ConnectionClosedError,
    ReadTimeoutError,
    ConnectTimeoutError,
    ResponseParserError,
)
BotoFailure = ClientError | BotoCoreError | ResponseParserError


class CredentialsUnavailable(Exception):
    """Raised from a client's credential refresh, within a call, when its credentials cannot be
    had (e.g. AssumeRole into a spoke account refused or failing): the account cannot be
    reached now. Its message says why; the call (calls.py) raises AwsUnavailable naming the
    account, and does not retry it (the refresh has retried what it could)."""


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "Unknown")


def error_message(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Message", "")


def translate(action: str, error: BotoFailure) -> AwsUnavailable | AwsRejected:
    """The domain error for a failed call; messages name the action, never credentials."""
    if isinstance(error, ClientError):
        return _translate_client_error(action, error)
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return AwsUnavailable(f"AWS {action} failed: {type(error).__name__}")
    return AwsRejected(f"AWS {action} failed: {error}")


def _translate_client_error(action: str, error: ClientError) -> AwsUnavailable | AwsRejected:
    code = error_code(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in THROTTLING_CODES or status >= 500:
        return AwsUnavailable(f"AWS {action} failed: {code} (HTTP {status})")
    # AWS's own message can name accounts, users and policies: it goes to the log, and the
    # caller, the grant and the audit trail get the action and the error code.
    log.warning("AWS %s failed: %s: %s", action, code, error_message(error))
    if code == "LimitExceeded":
        return AwsQuotaExceeded(f"AWS {action} failed: {code} (an account quota is reached)")
    return AwsRejected(f"AWS {action} failed: {code}; the broker's log has AWS's message")
