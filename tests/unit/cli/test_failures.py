import pytest

from accessbroker import errors
from accessbroker.cli.failures import (
    CommandFailed,
    UsageError,
    describe_error,
    exit_code,
)

ADDRESS = "broker.example:50051"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidArgument("bad"), 2),
        (UsageError("bad file"), 2),
        (errors.NotFound("no such grant"), 3),
        (errors.PermissionDenied("no"), 4),
        (errors.Unauthenticated("who"), 4),
        (errors.Unavailable("down"), 5),
        (errors.DeadlineExceeded("slow"), 5),
        (errors.FailedPrecondition("foreign profile"), 6),
        (errors.AlreadyExists("key reused"), 6),
        (errors.ResourceExhausted("policy too large"), 6),
        (errors.Internal("oops"), 1),
        (errors.BrokerError("UNKNOWN: ?"), 1),
        (CommandFailed("grant failed"), 1),
        (RuntimeError("bug"), 1),
    ],
)
def test_exit_codes(error: Exception, code: int) -> None:
    assert exit_code(error) == code


def test_unavailable_says_where_and_what_to_do() -> None:
    [line] = describe_error(errors.Unavailable("failed to connect\nto all addresses"), ADDRESS)
    assert line == (
        f"brokerctl: cannot reach the broker at {ADDRESS} (UNAVAILABLE: failed to connect to all "
        "addresses). Is it running? Set --address or BROKER_ADDRESS."
    )


def test_field_violations_follow_on_indented_lines() -> None:
    error = errors.InvalidArgument(
        "bucket: too short; prefix: no", {"prefix": "must not start with '/'", "bucket": "short"}
    )
    assert describe_error(error, ADDRESS) == [
        "brokerctl: the broker refused the request as invalid (INVALID_ARGUMENT); "
        "fix these fields and try again:",
        "  bucket: short",
        "  prefix: must not start with '/'",
    ]


def test_each_violation_of_a_field_gets_its_own_line_in_the_brokers_order() -> None:
    error = errors.InvalidArgument(
        "the request is invalid",
        [
            ("prefix", "must not start with '/'"),
            ("bucket", "short"),
            ("prefix", "must not contain '*' or '?'"),
        ],
    )
    assert describe_error(error, ADDRESS) == [
        "brokerctl: the broker refused the request as invalid (INVALID_ARGUMENT); "
        "fix these fields and try again:",
        "  bucket: short",
        "  prefix: must not start with '/'",
        "  prefix: must not contain '*' or '?'",
    ]


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            errors.NotFound("grant 1 does not exist"),
            "brokerctl: grant 1 does not exist (NOT_FOUND). Check the id and try again.",
        ),
        (
            errors.InvalidArgument("bucket is bad."),
            "brokerctl: bucket is bad (INVALID_ARGUMENT). Fix the request and try again.",
        ),
        (
            errors.Unauthenticated("no token"),
            "brokerctl: no token (UNAUTHENTICATED). Set --token or BROKER_TOKEN to a valid token.",
        ),
        (
            errors.FailedPrecondition("instance holds a foreign profile"),
            "brokerctl: instance holds a foreign profile (FAILED_PRECONDITION).",
        ),
        (CommandFailed("grant 1 failed: AccessDenied"), "brokerctl: grant 1 failed: AccessDenied"),
        (RuntimeError("bug\nhere"), "brokerctl: unexpected error: RuntimeError: bug here"),
    ],
)
def test_one_line_per_error(error: Exception, line: str) -> None:
    assert describe_error(error, ADDRESS) == [line]


def test_usage_errors_list_their_details() -> None:
    error = UsageError("access.yaml is not a valid request file:", ["entry 1: bad", "entry 2: bad"])
    assert describe_error(error, ADDRESS) == [
        "brokerctl: access.yaml is not a valid request file:",
        "  entry 1: bad",
        "  entry 2: bad",
    ]
