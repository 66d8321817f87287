from datetime import timedelta
from pathlib import Path

import pytest

from accessbroker.cli.failures import UsageError
from accessbroker.cli.requestfile import (
    DesiredGrant,
    load_request_file,
    parse_request_file,
)
from accessbroker.models import Access
from tests.unit.cli.factories import INSTANCE, OTHER_INSTANCE

EXAMPLE = Path(__file__).parents[3] / "examples" / "access.yaml"


def problems_of(text: str) -> list[str]:
    with pytest.raises(UsageError) as refused:
        parse_request_file(text, "access.yaml")
    assert "access.yaml" in refused.value.message
    return refused.value.details


def test_entries_become_desired_grants_in_file_order() -> None:
    request = parse_request_file(
        f"""
instances:
  {INSTANCE}:
    - {{bucket: ci-artifacts, access: upload, prefix: builds/, ttl: 8h, reason: "CI uploads"}}
    - {{bucket: datasets, access: READ_WRITE}}
  {OTHER_INSTANCE}:
"""
    )
    assert list(request.instances) == [INSTANCE, OTHER_INSTANCE]
    assert request.instances[INSTANCE] == [
        DesiredGrant(
            INSTANCE, "ci-artifacts", Access.UPLOAD, "builds/", timedelta(hours=8), "CI uploads"
        ),
        DesiredGrant(INSTANCE, "datasets", Access.READ_WRITE),
    ]
    assert request.instances[OTHER_INSTANCE] == []


def test_the_shipped_example_is_valid() -> None:
    request = load_request_file(EXAMPLE)
    assert len(request.instances) == 3
    assert any(not grants for grants in request.instances.values())


def test_every_problem_is_reported_naming_its_entry() -> None:
    problems = problems_of(
        f"""
instances:
  {INSTANCE}:
    - {{bucket: a-bucket, access: uplod}}
    - {{buket: a-bucket, access: read}}
    - {{bucket: a-bucket, access: read, ttl: 8}}
    - {{bucket: a-bucket, access: list, ttl: 8 hours}}
    - {{bucket: 42, access: read}}
    - just a string
"""
    )
    assert problems == [
        f"{INSTANCE} entry 1 (bucket a-bucket): `access` must be one of upload, read, "
        "read-write, list, not 'uplod'",
        f"{INSTANCE} entry 2: unknown key buket (known keys: bucket, access, prefix, ttl, reason)",
        f"{INSTANCE} entry 2: `bucket` is required",
        f"{INSTANCE} entry 3 (bucket a-bucket): `ttl` must be a duration such as 8h or 2d, not 8",
        f"{INSTANCE} entry 4 (bucket a-bucket): `ttl`: invalid duration '8 hours': use a number "
        "and a unit (s, m, h, d, w), e.g. 90s, 15m, 8h, 2d or 1h30m",
        f"{INSTANCE} entry 5: `bucket` must be text, not 42",
        f"{INSTANCE} entry 6: must be a mapping such as {{bucket: b, access: read}}",
    ]


def test_two_entries_for_one_scope_are_refused() -> None:
    problems = problems_of(
        f"""
instances:
  {INSTANCE}:
    - {{bucket: a-bucket, access: read, prefix: x/}}
    - {{bucket: a-bucket, access: read, prefix: y/}}
    - {{bucket: a-bucket, access: read, prefix: x/, reason: again}}
"""
    )
    assert problems == [
        f"{INSTANCE} entry 3 (bucket a-bucket): repeats entry 1 (read on s3://a-bucket/x/)"
    ]


SHAPE = (
    "the file must be a mapping with the key `instances` (and, optionally, `account` and `region`)"
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", SHAPE),
        ("instances: {}\nextra: 1", SHAPE),
        ("instances: {i-01234567: []}\naccount: 12", "`account` must be text"),
        ("instances: []", "`instances` must map instance ids to lists of grants"),
        ("instances: {}", "`instances` must map instance ids to lists of grants"),
        ("instances:\n  i-XYZ: []", "instance 'i-XYZ': must look like i-0123456789abcdef0"),
        (f"instances:\n  {INSTANCE}: read", f"{INSTANCE}: must be a list of grants"),
    ],
)
def test_the_shape_of_the_file_is_checked(text: str, problem: str) -> None:
    assert problems_of(text)[0].startswith(problem)


def test_yaml_syntax_errors_name_the_line() -> None:
    with pytest.raises(
        UsageError, match=r"access.yaml is not valid YAML: line 4, column 1: expected ',' or '}'"
    ):
        parse_request_file("instances:\n  i-0123456789abcdef0:\n    - {bucket: a\n", "access.yaml")


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read .*missing.yaml"):
        load_request_file(tmp_path / "missing.yaml")
