"""How IAM policy documents are written: a Statement that is one statement or a list, values
that are one string or a list, and wildcard patterns in Action, Resource and StringLike/ArnLike
values (`*` any run of characters, `?` any one, and `${*}`, `${?}`, `${$}` those characters
themselves: how a policy names a literal `*`, `?` or `$`)."""

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

_TOKENS = re.compile(r"\$\{[*?$]\}|[*?]|[^*?$]+|\$")


@lru_cache(maxsize=1024)
def wildcard(pattern: str) -> re.Pattern[str]:
    """The pattern as a regular expression, to be used with fullmatch."""
    return re.compile("".join(_piece(token) for token in _TOKENS.findall(pattern)), re.S)


def statements(document: Mapping[str, Any]) -> list[Any]:
    """A policy's statements: IAM takes a single statement as well as a list."""
    found = document.get("Statement", [])
    return [found] if isinstance(found, Mapping) else list(found)


def listed(value: str | Sequence[str]) -> tuple[str, ...]:
    """An element's values: IAM takes a single string as well as a list."""
    return (value,) if isinstance(value, str) else tuple(value)


def _piece(token: str) -> str:
    if token == "*":
        return ".*"
    if token == "?":
        return "."
    if token.startswith("${"):
        return re.escape(token[2])  # ${*}, ${?}, ${$}: the character itself
    return re.escape(token)
