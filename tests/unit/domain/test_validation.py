"""Validation of caller input: S3's and EC2's rules, and one InvalidRequest naming every problem."""

import re
import string
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.access import Access
from broker.domain.errors import FieldViolation, InvalidRequest
from broker.domain.grants import GrantRequest, GrantScope
from broker.domain.validation import (
    MAX_PREFIX_BYTES,
    MAX_REASON_CHARS,
    MAX_TTL,
    bucket_problems,
    free_text_problems,
    grant_id_problems,
    instance_id_problems,
    prefix_problems,
    require,
    validate_grant_request,
)
from tests.places import HOME

VALID = {
    "instance_id": "i-0123456789abcdef0",
    "bucket": "my-bucket",
    "prefix": "uploads/",
    "access": Access.UPLOAD,
    "ttl": timedelta(hours=1),
    "reason": "nightly export",
    "requested_by": "alice",
    "place": HOME,
}


def validate(**changes: object) -> GrantRequest:
    fields = {**VALID, **changes}
    return validate_grant_request(**fields)  # type: ignore[arg-type]


def violations(**changes: object) -> dict[str, list[str]]:
    with pytest.raises(InvalidRequest) as raised:
        validate(**changes)
    found: dict[str, list[str]] = {}
    for violation in raised.value.violations:
        found.setdefault(violation.field, []).append(violation.description)
    return found


# --- instance id --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["i-01234567", "i-0123456789abcdef0", "i-deadbeef", "i-00000000"])
def test_instance_ids_accepted(value: str) -> None:
    assert instance_id_problems(value) == []


@pytest.mark.parametrize(
    "value",
    [
        "",
        "i-",
        "i-0123456",  # 7
        "i-012345678",  # 9
        "i-0123456789abcdef",  # 16
        "i-0123456789abcdef01",  # 18
        "i-0123456789ABCDEF0",
        "I-01234567",
        "i_01234567",
        "i-0123456g",
        "x-01234567",
        "i-01234567\n",
        " i-01234567",
        "i-01234567 ",
        "i-٠١٢٣٤٥٦٧",  # Arabic-Indic digits: \d would take them
        "arn:aws:ec2:us-east-1:123456789012:instance/i-01234567",
    ],
)
def test_instance_ids_refused(value: str) -> None:
    assert instance_id_problems(value)


@given(st.text(max_size=25))
def test_instance_id_is_i_dash_then_8_or_17_lowercase_hex(value: str) -> None:
    expected = (
        value.startswith("i-")
        and len(value) in (10, 19)
        and all(c in "0123456789abcdef" for c in value[2:])
    )
    assert (instance_id_problems(value) == []) == expected


# --- bucket names -------------------------------------------------------------------------------


def s3_accepts(name: str) -> bool:
    """S3's rules for general purpose buckets, restated apart from the code under test."""
    allowed = set(string.ascii_lowercase + string.digits + ".-")
    edge = set(string.ascii_lowercase + string.digits)
    octets = name.split(".")
    return (
        3 <= len(name) <= 63
        and set(name) <= allowed
        and name[0] in edge
        and name[-1] in edge
        and ".." not in name
        and not (len(octets) == 4 and all(o and o.isascii() and o.isdigit() for o in octets))
        and not name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        and not name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3"))
    )


@pytest.mark.parametrize(
    "name",
    [
        "abc",
        "a" * 63,
        "my-bucket",
        "my.bucket.name",
        "0bucket9",
        "123",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.a",
        "xn-abc",
        "axn--b",
        "sthree",
        "bucket-s3alias-x",
        "bucket.mrapx",
        "x-s3",
        "amzn-s3-demo",
        "a-b--ol-s3x",
    ],
)
def test_valid_bucket_names(name: str) -> None:
    assert bucket_problems(name) == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ab", "3 to 63"),
        ("", "3 to 63"),
        ("a" * 64, "3 to 63"),
        ("My-Bucket", "lowercase"),
        ("my_bucket", "lowercase"),
        ("my bucket", "lowercase"),
        ("my/bucket", "lowercase"),
        ("bücket", "lowercase"),
        ("-bucket", "start and end"),
        ("bucket-", "start and end"),
        (".bucket", "start and end"),
        ("bucket.", "start and end"),
        ("my..bucket", "adjacent periods"),
        ("192.168.5.4", "IP address"),
        ("0.0.0.0", "IP address"),
        ("999.999.999.999", "IP address"),
        ("192.168.05.4", "IP address"),
        ("1.2.3.0004", "IP address"),
        ("xn--bucket", "'xn--'"),
        ("sthree-bucket", "'sthree-'"),
        ("sthree-configurator", "'sthree-'"),
        ("amzn-s3-demo-bucket", "'amzn-s3-demo-'"),
        ("bucket-s3alias", "'-s3alias'"),
        ("bucket--ol-s3", "'--ol-s3'"),
        ("bucket.mrap", "'.mrap'"),
        ("bucket--x-s3", "'--x-s3'"),
    ],
)
def test_invalid_bucket_names(name: str, problem: str) -> None:
    problems = bucket_problems(name)
    assert any(problem in p for p in problems), problems


def test_a_bucket_name_can_break_several_rules_at_once() -> None:
    problems = bucket_problems("xn--Bad..name-s3alias")
    assert len(problems) == 4, problems


bucket_alphabet = st.sampled_from([*"abz09.-", "xn--", "sthree-", "amzn-s3-demo-", "-s3alias"])


@given(
    st.one_of(
        st.lists(bucket_alphabet, max_size=12).map("".join),
        st.text(max_size=70),
        st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True),
        st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,4}){2,4}", fullmatch=True),
    )
)
def test_bucket_rules_match_s3s(name: str) -> None:
    assert (bucket_problems(name) == []) == s3_accepts(name)


# --- prefixes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "a",
        "uploads/",
        "a/b/c/",
        "with space/",
        "ünïcödé/日本/",
        "x" * MAX_PREFIX_BYTES,
        "$dollar/",
    ],
)
def test_valid_prefixes(prefix: str) -> None:
    assert prefix_problems(prefix) == []


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("/uploads", "'/'"),
        ("up*", "'*'"),
        ("up?", "'?'"),
        ("x" * (MAX_PREFIX_BYTES + 1), "bytes"),
        ("é" * (MAX_PREFIX_BYTES // 2 + 1), "bytes"),  # 513 characters, 1026 bytes
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\x7f", "control"),
        ("a\x9f", "control"),
        ("a\ud800", "control"),  # a lone surrogate is no text at all
    ],
)
def test_invalid_prefixes(prefix: str, problem: str) -> None:
    problems = prefix_problems(prefix)
    assert any(problem in p for p in problems), problems


@given(
    st.text(max_size=40) | st.text(st.sampled_from("aé/*?\x00\ud800"), min_size=500, max_size=600)
)
def test_prefix_rules(prefix: str) -> None:
    expected = (
        not prefix.startswith("/")
        and "*" not in prefix
        and "?" not in prefix
        and len(prefix.encode("utf-8", "surrogatepass")) <= MAX_PREFIX_BYTES
        and not any(
            ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in prefix
        )
    )
    assert (prefix_problems(prefix) == []) == expected


# --- grant ids and free text --------------------------------------------------------------------


def test_a_canonical_uuid_is_a_grant_id() -> None:
    assert grant_id_problems(str(uuid.uuid4())) == []
    assert grant_id_problems("00000000-0000-0000-0000-000000000000") == []


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-a-uuid",
        "1234",
        "00000000-0000-0000-0000-00000000000",
        "00000000-0000-0000-0000-0000000000000",
        "00000000-0000-0000-0000-00000000000g",
        # Forms uuid.UUID() takes that are still not an id GrantAccess returns:
        "6F9619FF-8B86-D011-B42D-00C04FC964FF",
        "{6f9619ff-8b86-d011-b42d-00c04fc964ff}",
        "urn:uuid:6f9619ff-8b86-d011-b42d-00c04fc964ff",
        "6f9619ff8b86d011b42d00c04fc964ff",
        "0_00000000000000000000000000000000"[:32],
        " 0000000000000000000000000000000",
        "\u0660" * 32,  # Arabic-Indic zero: int() reads it as a digit
        "\ud800" * 32,
    ],
)
def test_anything_else_is_not_a_grant_id(value: str) -> None:
    assert grant_id_problems(value) == ["must be a grant id as returned by GrantAccess"]


@given(st.uuids())
def test_every_canonical_uuid_is_a_grant_id(value: uuid.UUID) -> None:
    assert grant_id_problems(str(value)) == []


@given(st.text(max_size=40))
def test_grant_ids_are_canonical_uuids_only(value: str) -> None:
    canonical = re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value)
    assert (grant_id_problems(value) == []) == bool(canonical)


def test_free_text() -> None:
    assert free_text_problems("", 10) == []
    assert free_text_problems("line one\nline two\r\n\ttabbed", 100) == []
    assert free_text_problems("日本語 ✓", 5) == []
    assert free_text_problems("x" * 10, 10) == []
    assert free_text_problems("x" * 11, 10) == ["must be at most 10 characters"]
    assert free_text_problems("bad \ud800", 10) == ["must be valid Unicode text"]


@pytest.mark.parametrize("text", ["nul\x00", "escape \x1b[31m", "bell\x07", "c1\x85"])
def test_free_text_refuses_control_characters(text: str) -> None:
    assert free_text_problems(text, 100), text


# --- require and validate_grant_request ---------------------------------------------------------


def test_require_passes_when_no_field_has_a_problem() -> None:
    require({"a": [], "b": []})


def test_require_names_every_problem_of_every_field() -> None:
    with pytest.raises(InvalidRequest) as raised:
        require({"a": ["one", "two"], "b": [], "c": ["three"]})
    assert raised.value.violations == (
        FieldViolation("a", "one"),
        FieldViolation("a", "two"),
        FieldViolation("c", "three"),
    )
    assert str(raised.value) == "a: one; a: two; c: three"


def test_a_valid_request() -> None:
    request = validate()
    assert request == GrantRequest(
        instance_id="i-0123456789abcdef0",
        place=HOME,
        scope=GrantScope(bucket="my-bucket", prefix="uploads/", access=Access.UPLOAD),
        ttl=timedelta(hours=1),
        reason="nightly export",
        requested_by="alice",
    )


def test_no_ttl_and_no_reason_are_fine() -> None:
    request = validate(ttl=None, reason="", prefix="")
    assert request.ttl is None and request.reason == "" and request.scope.prefix == ""


@pytest.mark.parametrize("access", list(Access))
def test_every_access_level_is_accepted(access: Access) -> None:
    assert validate(access=access).scope.access is access


def test_all_violations_are_reported_at_once() -> None:
    found = violations(
        instance_id="i-xyz",
        bucket="Bad_Bucket",
        prefix="/abs*",
        access=None,
        ttl=timedelta(0),
        reason="r" * (MAX_REASON_CHARS + 1),
    )
    assert set(found) == {"instance_id", "bucket", "prefix", "access", "ttl", "reason"}
    assert len(found["prefix"]) == 2


def test_missing_access_alone_is_refused() -> None:
    assert violations(access=None) == {"access": ["must be one of upload, read, read-write, list"]}


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1), timedelta(days=-3)])
def test_ttl_must_be_positive(ttl: timedelta) -> None:
    assert set(violations(ttl=ttl)) == {"ttl"}


def test_smallest_ttl_is_fine() -> None:
    assert validate(ttl=timedelta(microseconds=1)).ttl == timedelta(microseconds=1)


@pytest.mark.parametrize("ttl", [timedelta(days=365 * 200), timedelta.max])
def test_a_ttl_beyond_any_calendar_is_refused(ttl: timedelta) -> None:
    # Otherwise `now + ttl` overflows datetime when the grant is created.
    assert set(violations(ttl=ttl)) == {"ttl"}


def test_a_ttl_over_the_servers_maximum_is_refused_naming_the_maximum() -> None:
    assert validate(ttl=timedelta(hours=8), max_ttl=timedelta(hours=8)).ttl == timedelta(hours=8)
    found = violations(ttl=timedelta(hours=8, seconds=1), max_ttl=timedelta(hours=8))
    assert found == {"ttl": ["must be at most 8h, the server's maximum"]}


def test_a_maximum_beyond_the_domains_bound_leaves_the_domains_bound() -> None:
    found = violations(ttl=timedelta(days=365 * 200), max_ttl=timedelta.max)
    assert found == {"ttl": [f"must be at most {MAX_TTL.days} days"]}


def test_reason_at_its_limit_is_fine() -> None:
    assert validate(reason="r" * MAX_REASON_CHARS).reason == "r" * MAX_REASON_CHARS


anything = st.text(max_size=80) | st.text(st.characters(max_codepoint=0x10FFFF), max_size=5)


@given(
    st.fixed_dictionaries(
        {
            "instance_id": anything | st.just(VALID["instance_id"]),
            "bucket": anything | st.just(VALID["bucket"]),
            "prefix": anything | st.just(VALID["prefix"]),
            "access": st.none() | st.sampled_from(Access),
            "ttl": st.none() | st.timedeltas(),
            "reason": anything,
            "requested_by": anything,
        }
    )
)
def test_any_input_is_either_a_request_or_invalid(fields: dict[str, Any]) -> None:
    try:
        request = validate_grant_request(**fields, place=HOME)
    except InvalidRequest as error:
        assert error.violations
        assert {v.field for v in error.violations} <= set(fields)
        assert all(v.description for v in error.violations)
        return
    bucket, prefix, reason = fields["bucket"], fields["prefix"], fields["reason"]
    assert request.scope == GrantScope(bucket, prefix, fields["access"])
    assert request.instance_id == fields["instance_id"]
    assert (request.ttl, request.reason) == (fields["ttl"], reason)
    # What was accepted obeys every rule, and can be stored and sent as UTF-8.
    assert instance_id_problems(request.instance_id) == bucket_problems(bucket) == []
    assert prefix_problems(prefix) == free_text_problems(reason, MAX_REASON_CHARS) == []
    (request.instance_id + bucket + prefix + reason).encode("utf-8")
