"""BROKER_TOKENS_FILE: identities and token digests, refused with a clear message when wrong."""

import hashlib
from pathlib import Path

import pytest

from broker.adapters.config.tokens_file import load_tokens_file
from broker.domain.credentials import StoredToken
from broker.settings import ConfigurationError
from tests.credentials import write_tokens_file

DIGEST = "a" * 64
SECRET = "s3cr3t-token-value"


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    return path


def test_tokens_are_read_as_identity_and_digest_bytes(tmp_path: Path) -> None:
    path = write_tokens_file(tmp_path / "t.yaml", {"svc-ci": "one", "spiffe://x.org/y": "two"})

    assert load_tokens_file(path) == (
        StoredToken("svc-ci", hashlib.sha256(b"one").digest()),
        StoredToken("spiffe://x.org/y", hashlib.sha256(b"two").digest()),
    )


def test_an_empty_list_is_a_valid_file_that_lets_nobody_in(tmp_path: Path) -> None:
    assert load_tokens_file(_file(tmp_path, "tokens: []\n")) == ()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "must be a YAML mapping"),
        ("- identity: a\n", "must be a YAML mapping"),
        ("users: []\n", "unknown key users"),
        ("{}\n", "missing tokens"),
        ("tokens: {identity: a}\n", "tokens must be a list"),
        ("tokens: [a]\n", r"tokens\[0\]: must be a mapping"),
        (f"tokens: [{{sha256: {DIGEST}}}]\n", r"tokens\[0\]: missing identity"),
        ("tokens: [{identity: a}]\n", "missing sha256"),
        (f"tokens: [{{identity: a, sha256: {DIGEST}, note: x}}]\n", "unknown key note"),
        (f"tokens: [{{identity: '', sha256: {DIGEST}}}]\n", "identity must not be empty"),
        (f"tokens: [{{identity: 7, sha256: {DIGEST}}}]\n", "identity must be a string"),
        (f"tokens: [{{identity: ' a', sha256: {DIGEST}}}]\n", "white space"),
        ("tokens: [{identity: a, sha256: abc}]\n", "64 hexadecimal characters"),
        (f"tokens: [{{identity: system, sha256: {DIGEST}}}]\n", "'system' is reserved"),
        (f"tokens: [{{identity: anonymous, sha256: {DIGEST}}}]\n", "'anonymous' is reserved"),
        (
            f"tokens: [{{identity: a, sha256: {DIGEST}}}, {{identity: a, sha256: {'b' * 64}}}]\n",
            "identity a is listed twice",
        ),
        (
            f"tokens: [{{identity: a, sha256: {DIGEST}}}, {{identity: b, sha256: {DIGEST}}}]\n",
            "two identities have the same sha256",
        ),
    ],
)
def test_malformed_files_are_refused_saying_where_and_why(
    tmp_path: Path, text: str, complaint: str
) -> None:
    with pytest.raises(ConfigurationError, match=complaint) as refused:
        load_tokens_file(_file(tmp_path, text))
    assert str(tmp_path) in str(refused.value)


def test_a_token_pasted_instead_of_its_digest_is_never_repeated(tmp_path: Path) -> None:
    path = _file(tmp_path, f"tokens: [{{identity: a, sha256: {SECRET}}}]\n")

    with pytest.raises(ConfigurationError) as refused:
        load_tokens_file(path)

    assert "never the token itself" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_invalid_yaml_is_reported_by_position_without_quoting_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, f"tokens:\n  - identity: a\n    sha256: [{SECRET}\n")

    with pytest.raises(ConfigurationError, match=r"not valid YAML at line \d+, column \d+") as e:
        load_tokens_file(path)

    assert SECRET not in str(e.value)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read it: No such file"):
        load_tokens_file(tmp_path / "absent.yaml")
