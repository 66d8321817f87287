"""Validation of caller input. Each check returns every problem it finds, so one reply names all."""

import re
import unicodedata
import uuid
from datetime import timedelta

from broker.domain.access import Access
from broker.domain.durations import format_duration
from broker.domain.errors import FieldViolation, InvalidRequest
from broker.domain.grants import GrantRequest, GrantScope
from broker.domain.places import Place

INSTANCE_ID = re.compile(r"i-([0-9a-f]{8}|[0-9a-f]{17})")
_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")
# S3 refuses any name shaped like dotted-quad IPv4, octets in range or not ("999.1.1.01" too).
_IPV4_SHAPED = re.compile(r"[0-9]+(\.[0-9]+){3}")
MAX_PREFIX_BYTES = 1024
MAX_REASON_CHARS = 1024
MAX_IDEMPOTENCY_KEY_CHARS = 128
# Far beyond any sensible grant, yet `now + ttl` stays within datetime's range (year 9999).
MAX_TTL = timedelta(days=36_525)
_ACCESS_PROBLEM = "must be one of upload, read, read-write, list"
# Line breaks and tabs are text; other control characters (NUL, escape sequences) are not, and
# PostgreSQL cannot store NUL at all.
_TEXT_CONTROLS = frozenset("\t\n\r")


def instance_id_problems(value: str) -> list[str]:
    if INSTANCE_ID.fullmatch(value):
        return []
    return ["must look like i-0123456789abcdef0 (i- then 8 or 17 lowercase hex digits)"]


def bucket_problems(value: str) -> list[str]:
    """S3's naming rules for general purpose buckets."""
    if not 3 <= len(value) <= 63:
        return ["must be 3 to 63 characters long"]
    problems = []
    if not _BUCKET_CHARS.fullmatch(value):
        problems.append(
            "may hold only lowercase letters, digits, '.' and '-', "
            "and must start and end with a letter or digit"
        )
    if ".." in value:
        problems.append("must not contain two adjacent periods")
    if _IPV4_SHAPED.fullmatch(value):
        problems.append("must not be formatted as an IP address")
    problems += [
        f"must not start with {p!r}" for p in _BUCKET_RESERVED_PREFIXES if value.startswith(p)
    ]
    problems += [f"must not end with {s!r}" for s in _BUCKET_RESERVED_SUFFIXES if value.endswith(s)]
    return problems


def prefix_problems(value: str) -> list[str]:
    problems = []
    if value.startswith("/"):
        problems.append("must not start with '/' (S3 keys are relative to the bucket)")
    if "*" in value or "?" in value:
        problems.append("must not contain '*' or '?': the broker adds the only wildcard")
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_PREFIX_BYTES:
        problems.append(f"must be at most {MAX_PREFIX_BYTES} bytes of UTF-8")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        problems.append("must not contain control characters")
    return problems


def grant_id_problems(value: str) -> list[str]:
    # uuid.UUID also takes braces, "urn:uuid:", upper case, "_" and whitespace: only the canonical
    # form it returns is a grant id the store can find.
    try:
        if str(uuid.UUID(value)) == value:
            return []
    except ValueError:
        pass
    return ["must be a grant id as returned by GrantAccess"]


def free_text_problems(value: str, limit: int) -> list[str]:
    problems = []
    if len(value) > limit:
        problems.append(f"must be at most {limit} characters")
    if any(unicodedata.category(ch) == "Cs" for ch in value):
        problems.append("must be valid Unicode text")
    if any(unicodedata.category(ch) == "Cc" and ch not in _TEXT_CONTROLS for ch in value):
        problems.append("must not contain control characters other than tab and line breaks")
    return problems


def require(checks: dict[str, list[str]]) -> None:
    """Raises InvalidRequest naming every field with a problem; returns when there are none."""
    violations = [
        FieldViolation(field, problem) for field, problems in checks.items() for problem in problems
    ]
    if violations:
        raise InvalidRequest(violations)


def validate_grant_request(
    *,
    instance_id: str,
    bucket: str,
    prefix: str,
    access: Access | None,
    ttl: timedelta | None,
    reason: str,
    requested_by: str,
    place: Place,
    max_ttl: timedelta | None = None,
) -> GrantRequest:
    """`ttl` is what the grant will have (the server's default already applied); `max_ttl` is
    the server's maximum, None for the domain's own bound."""
    require(
        {
            "instance_id": instance_id_problems(instance_id),
            "bucket": bucket_problems(bucket),
            "prefix": prefix_problems(prefix),
            "access": [] if access is not None else [_ACCESS_PROBLEM],
            "ttl": ttl_problems(ttl, max_ttl) if ttl is not None else [],
            "reason": free_text_problems(reason, MAX_REASON_CHARS),
        }
    )
    if access is None:  # reported above already; this narrows the type, and survives `python -O`
        raise InvalidRequest([FieldViolation("access", _ACCESS_PROBLEM)])
    return GrantRequest(
        instance_id=instance_id,
        scope=GrantScope(bucket=bucket, prefix=prefix, access=access),
        ttl=ttl,
        reason=reason,
        requested_by=requested_by,
        place=place,
    )


def ttl_problems(ttl: timedelta, max_ttl: timedelta | None) -> list[str]:
    """Problems of a ttl under the server's maximum (None: only the domain's MAX_TTL applies)."""
    if ttl <= timedelta(0):
        return ["must be positive when set"]
    if max_ttl is not None and max_ttl < MAX_TTL and ttl > max_ttl:
        return [f"must be at most {format_duration(max_ttl)}, the server's maximum"]
    if ttl > MAX_TTL:
        return [f"must be at most {MAX_TTL.days} days"]
    return []
