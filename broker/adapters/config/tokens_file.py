"""BROKER_TOKENS_FILE: who the bearer tokens belong to, as SHA-256 digests of the tokens.

```yaml
tokens:
  - identity: svc-ci
    sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
```
A digest is `printf %s "$TOKEN" | sha256sum`: the file never holds a token itself.
"""

import re
from pathlib import Path
from typing import Any

from broker.adapters.config.yaml_file import (
    check_keys,
    mapping,
    read_yaml_mapping,
)
from broker.domain.authorization import credential_identity_problems
from broker.domain.credentials import StoredToken
from broker.settings import ConfigurationError

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
WHAT = "tokens file"


def load_tokens_file(path: Path) -> tuple[StoredToken, ...]:
    """The file's tokens; raises ConfigurationError naming the first problem."""
    data = read_yaml_mapping(path, WHAT)
    check_keys(data, f"{WHAT} {path}", allowed=("tokens",), required=("tokens",))
    entries = data["tokens"]
    if not isinstance(entries, list):
        raise ConfigurationError(f"{WHAT} {path}: tokens must be a list")
    tokens = tuple(_token(entry, f"{WHAT} {path}: tokens[{n}]") for n, entry in enumerate(entries))
    _refuse_duplicates(tokens, f"{WHAT} {path}")
    return tokens


def _token(entry: Any, where: str) -> StoredToken:
    entry = mapping(entry, where)
    check_keys(entry, where, allowed=("identity", "sha256"), required=("identity", "sha256"))
    identity, digest = entry["identity"], entry["sha256"]
    problems = (
        credential_identity_problems(identity)
        if isinstance(identity, str)
        else ["must be a string"]
    )
    if problems:
        raise ConfigurationError(f"{where}: identity {'; '.join(problems)}")
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        # Not quoted: it may be the token itself, put there by mistake.
        raise ConfigurationError(
            f"{where}: sha256 must be 64 hexadecimal characters, the SHA-256 digest of the "
            'token (printf %s "$TOKEN" | sha256sum), never the token itself'
        )
    return StoredToken(identity, bytes.fromhex(digest))


def _refuse_duplicates(tokens: tuple[StoredToken, ...], where: str) -> None:
    identities = [t.identity for t in tokens]
    repeated = sorted({i for i in identities if identities.count(i) > 1})
    if repeated:
        raise ConfigurationError(f"{where}: identity {', '.join(repeated)} is listed twice")
    if len({t.sha256 for t in tokens}) != len(tokens):
        raise ConfigurationError(f"{where}: two identities have the same sha256 digest")
