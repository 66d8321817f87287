"""Request files: the grants each listed instance should hold, as YAML (see examples/README.md)."""

import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from accessbroker.cli.durations import parse_duration
from accessbroker.cli.failures import UsageError
from accessbroker.models import Access

_INSTANCE_ID = re.compile(r"i-([0-9a-f]{8}|[0-9a-f]{17})")
_REQUIRED = ("bucket", "access")
_OPTIONAL = ("prefix", "ttl", "reason")
# Where the file's instances live, for the whole file.
_PLACE = ("account", "region")


@dataclass(frozen=True)
class DesiredGrant:
    instance_id: str
    bucket: str
    access: Access
    prefix: str = ""
    ttl: timedelta | None = None
    reason: str = ""
    # Where the instance lives, as the file says for all its instances.
    account: str = ""
    region: str = ""

    @property
    def scope(self) -> tuple[str, str, Access]:
        """What makes two grants the same grant: bucket, prefix and access."""
        return (self.bucket, self.prefix, self.access)


@dataclass(frozen=True)
class RequestFile:
    """Every listed instance, in file order, with its desired grants (possibly none), and where
    the instances live: one account and region for the whole file ("": the broker's own account,
    its first region)."""

    instances: dict[str, list[DesiredGrant]]
    account: str = ""
    region: str = ""


def load_request_file(path: Path) -> RequestFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    return parse_request_file(text, str(path))


def parse_request_file(text: str, name: str = "request file") -> RequestFile:
    """The file's content, or UsageError naming every bad entry on its own line."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"{name} is not valid YAML: {_yaml_problem(error)}") from None
    problems: list[str] = []
    instances = _instances(document, problems)
    account, region = (_place(document, key, problems) for key in _PLACE)
    if problems:
        raise UsageError(
            f"{name} is not a valid request file ({len(problems)} problem"
            f"{'s' if len(problems) > 1 else ''}); fix these and try again:",
            problems,
        )
    placed = {
        i: [replace(g, account=account, region=region) for g in grants]
        for i, grants in instances.items()
    }
    return RequestFile(placed, account, region)


def _place(document: object, key: str, problems: list[str]) -> str:
    value = document.get(key, "") if isinstance(document, dict) else ""
    if not isinstance(value, str):
        problems.append(f"`{key}` must be text, an account's id or name or a region's name")
        return ""
    return value


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return " ".join(str(error).split())


def _instances(document: object, problems: list[str]) -> dict[str, list[DesiredGrant]]:
    if (
        not isinstance(document, dict)
        or "instances" not in document
        or set(document)
        - {
            "instances",
            *_PLACE,
        }
    ):
        problems.append(
            "the file must be a mapping with the key `instances` (and, optionally, `account` "
            "and `region`)"
        )
        return {}
    listed = document["instances"]
    if not isinstance(listed, dict) or not listed:
        problems.append("`instances` must map instance ids to lists of grants")
        return {}
    instances: dict[str, list[DesiredGrant]] = {}
    for instance_id, entries in listed.items():
        if not isinstance(instance_id, str) or not _INSTANCE_ID.fullmatch(instance_id):
            problems.append(
                f"instance {instance_id!r}: must look like i-0123456789abcdef0 "
                "(i- then 8 or 17 lowercase hex digits)"
            )
            continue
        instances[instance_id] = _grants(instance_id, entries, problems)
    return instances


def _grants(instance_id: str, entries: object, problems: list[str]) -> list[DesiredGrant]:
    if entries is None:
        return []  # `i-…:` with nothing under it: the instance should hold no grants
    if not isinstance(entries, list):
        problems.append(f"{instance_id}: must be a list of grants (or [] for none)")
        return []
    grants: list[DesiredGrant] = []
    seen: dict[tuple[str, str, Access], int] = {}
    for number, entry in enumerate(entries, start=1):
        where = _where(instance_id, number, entry)
        grant = _grant(instance_id, entry, where, problems)
        if grant is None:
            continue
        if grant.scope in seen:
            problems.append(
                f"{where}: repeats entry {seen[grant.scope]} "
                f"({grant.access.value} on s3://{grant.bucket}/{grant.prefix})"
            )
            continue
        seen[grant.scope] = number
        grants.append(grant)
    return grants


def _where(instance_id: str, number: int, entry: object) -> str:
    """How problems name an entry: "i-0123456789abcdef0 entry 2 (bucket datasets)"."""
    bucket = entry.get("bucket") if isinstance(entry, dict) else None
    named = f" (bucket {bucket})" if isinstance(bucket, str) else ""
    return f"{instance_id} entry {number}{named}"


def _grant(instance_id: str, entry: object, where: str, problems: list[str]) -> DesiredGrant | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a mapping such as {{bucket: b, access: read}}")
        return None
    found = len(problems)
    unknown = sorted(str(k) for k in entry if k not in (*_REQUIRED, *_OPTIONAL))
    if unknown:
        known = ", ".join((*_REQUIRED, *_OPTIONAL))
        problems.append(f"{where}: unknown key {', '.join(unknown)} (known keys: {known})")
    problems += [f"{where}: `{k}` is required" for k in _REQUIRED if k not in entry]
    texts = {k: _text(entry, k, where, problems) for k in ("bucket", "prefix", "reason")}
    access = _access(entry.get("access"), where, problems) if "access" in entry else None
    ttl = _ttl(entry.get("ttl"), where, problems)
    if len(problems) > found or access is None:
        return None
    return DesiredGrant(instance_id, texts["bucket"], access, texts["prefix"], ttl, texts["reason"])


def _text(entry: dict[Any, Any], key: str, where: str, problems: list[str]) -> str:
    value = entry.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}: `{key}` must be text, not {value!r}")
        return ""
    return value


def _access(value: object, where: str, problems: list[str]) -> Access | None:
    try:
        return Access.parse(str(value))
    except ValueError:
        choices = ", ".join(a.value for a in Access)
        problems.append(f"{where}: `access` must be one of {choices}, not {value!r}")
        return None


def _ttl(value: object, where: str, problems: list[str]) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{where}: `ttl` must be a duration such as 8h or 2d, not {value!r}")
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        problems.append(f"{where}: `ttl`: {error}")
        return None
