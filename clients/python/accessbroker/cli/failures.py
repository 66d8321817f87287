"""What brokerctl prints and exits with when something goes wrong: one line, one exit code."""

from accessbroker import errors

OK = 0
OTHER = 1
INVALID_INPUT = 2
NOT_FOUND = 3
DENIED = 4
UNAVAILABLE = 5
CONFLICT = 6
INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  any other error (e.g. INTERNAL, or a grant that ended FAILED)
  2  invalid input: a usage error, a bad request file, or INVALID_ARGUMENT
  3  not found: NOT_FOUND (unknown grant or instance)
  4  denied: PERMISSION_DENIED or UNAUTHENTICATED
  5  unavailable: UNAVAILABLE or DEADLINE_EXCEEDED (also `wait` running out of time)
  6  conflict: FAILED_PRECONDITION, ALREADY_EXISTS or RESOURCE_EXHAUSTED
"""

_CODES: dict[type[errors.BrokerError], int] = {
    errors.InvalidArgument: INVALID_INPUT,
    errors.NotFound: NOT_FOUND,
    errors.PermissionDenied: DENIED,
    errors.Unauthenticated: DENIED,
    errors.Unavailable: UNAVAILABLE,
    errors.DeadlineExceeded: UNAVAILABLE,
    errors.FailedPrecondition: CONFLICT,
    errors.AlreadyExists: CONFLICT,
    errors.ResourceExhausted: CONFLICT,
}


class UsageError(Exception):
    """Input brokerctl refuses before calling the broker (a bad duration, a bad request file).

    `details` are printed on indented lines after the message."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])


class CommandFailed(Exception):
    """The broker answered, but the outcome is a failure (a grant that ended FAILED)."""

    def __init__(self, message: str, exit_code: int = OTHER) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def exit_code(error: BaseException) -> int:
    if isinstance(error, UsageError):
        return INVALID_INPUT
    if isinstance(error, CommandFailed):
        return error.exit_code
    if isinstance(error, errors.BrokerError):
        return _CODES.get(type(error), OTHER)
    return OTHER


def describe_error(error: BaseException, address: str) -> list[str]:
    """The lines for stderr: one saying what, why and what to do, then indented particulars."""
    if isinstance(error, UsageError):
        return [f"brokerctl: {_one_line(error.message)}", *(f"  {d}" for d in error.details)]
    if isinstance(error, CommandFailed):
        return [f"brokerctl: {_one_line(error.message)}"]
    if isinstance(error, errors.BrokerError):
        return _broker_error_lines(error, address)
    return [f"brokerctl: unexpected error: {type(error).__name__}: {_one_line(str(error))}"]


def _broker_error_lines(error: errors.BrokerError, address: str) -> list[str]:
    message, code = _one_line(error.message).rstrip("."), error.code.name
    if isinstance(error, errors.Unavailable):
        return [
            f"brokerctl: cannot reach the broker at {address} ({code}: {message}). "
            "Is it running? Set --address or BROKER_ADDRESS."
        ]
    if isinstance(error, errors.InvalidArgument) and error.violations:
        return [
            f"brokerctl: the broker refused the request as invalid ({code}); "
            "fix these fields and try again:",
            *violation_lines(error),
        ]
    return [f"brokerctl: {message} ({code}). {_HINTS.get(type(error), '')}".rstrip()]


def violation_lines(error: errors.InvalidArgument) -> list[str]:
    return [f"  {line}" for line in violation_texts(error)]


def violation_texts(error: errors.InvalidArgument) -> list[str]:
    """One "field: problem" per violation, fields in order; a field's problems stay in the
    broker's order, each on its own line."""
    by_field = sorted(error.field_violations, key=lambda violation: violation.field)
    return [f"{field}: {why}" for field, why in by_field]


_HINTS: dict[type[errors.BrokerError], str] = {
    errors.InvalidArgument: "Fix the request and try again.",
    errors.NotFound: "Check the id and try again.",
    errors.PermissionDenied: "Your token may not do this; ask the broker's operators for access.",
    errors.Unauthenticated: "Set --token or BROKER_TOKEN to a valid token.",
    errors.DeadlineExceeded: "Try again, or wait longer (e.g. `wait --timeout`).",
    errors.AlreadyExists: "Use a new idempotency key for a different request.",
    errors.ResourceExhausted: "Revoke grants the instance no longer needs, or merge prefixes.",
    errors.Internal: "The broker's log has the details.",
}


def _one_line(text: str) -> str:
    return " ".join(text.split())
