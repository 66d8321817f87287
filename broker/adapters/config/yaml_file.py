"""Reading a YAML configuration file, and checking its shape with messages that say where.

Messages never quote the file's content: a tokens file may hold a token pasted by mistake.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from broker.settings import ConfigurationError


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The file's top-level mapping; `what` names the file in messages (e.g. "tokens file")."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ConfigurationError(f"{what} {path}: cannot read it: {reason}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{what} {path}: not valid YAML{_where(error)}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{what} {path}: must be a YAML mapping (key: value)")
    return data


def _where(error: yaml.YAMLError) -> str:
    """The position and the problem, without the snippet of the file PyYAML would quote."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{position}: {problem}" if problem else position


def check_keys(
    data: dict[str, Any], where: str, allowed: Sequence[str], required: Sequence[str] = ()
) -> None:
    """Refuses keys not in `allowed` (a typo must not silently drop a rule's condition) and
    missing `required` ones."""
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key {', '.join(unknown)} (expected {', '.join(allowed)})"
        )
    missing = [key for key in required if key not in data]
    if missing:
        raise ConfigurationError(f"{where}: missing {', '.join(missing)}")


def string_list(value: object, where: str) -> tuple[str, ...]:
    """A non-empty list of non-empty strings."""
    if not isinstance(value, list) or not value:
        raise ConfigurationError(f"{where}: must be a non-empty list")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"{where}: every entry must be a non-empty string")
    return tuple(value)


def mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where}: must be a mapping (key: value)")
    return value
