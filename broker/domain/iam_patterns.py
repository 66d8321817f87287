"""IAM's wildcard patterns, as policies write them in Action, Resource and StringLike/ArnLike
values: `*` any run of characters, `?` any one, and `${*}`, `${?}`, `${$}` those characters
themselves (how a policy names a literal `*`, `?` or `$`)."""

import re
from functools import lru_cache

_TOKENS = re.compile(r"\$\{[*?$]\}|[*?]|[^*?$]+|\$")


@lru_cache(maxsize=1024)
def wildcard(pattern: str) -> re.Pattern[str]:
    """The pattern as a regular expression, to be used with fullmatch."""
    return re.compile("".join(_piece(token) for token in _TOKENS.findall(pattern)), re.S)


def _piece(token: str) -> str:
    if token == "*":
        return ".*"
    if token == "?":
        return "."
    if token.startswith("${"):
        return re.escape(token[2])  # ${*}, ${?}, ${$}: the character itself
    return re.escape(token)
