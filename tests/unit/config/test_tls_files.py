"""The server's certificate, key and client CA: checked when read, so a bad file stops the start."""

from pathlib import Path

import pytest

from broker.adapters.config.tls_files import load_tls_files
from broker.settings import ConfigurationError
from tests.credentials import CertificateAuthority


def test_certificate_key_and_client_ca_are_read(ca: CertificateAuthority, tmp_path: Path) -> None:
    pair = ca.issue("broker", server=True)
    cert, key = pair.write(tmp_path, "server")
    (tmp_path / "ca.crt").write_bytes(ca.pem)

    files = load_tls_files(cert, key, tmp_path / "ca.crt")

    assert (files.certificate_chain, files.private_key) == (pair.certificate, pair.key)
    assert files.client_ca == ca.pem


def test_without_a_client_ca_no_client_certificate_is_asked_for(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    cert, key = ca.issue("broker", server=True).write(tmp_path, "server")

    assert load_tls_files(cert, key).client_ca is None


def test_a_key_of_another_certificate_is_refused(ca: CertificateAuthority, tmp_path: Path) -> None:
    cert, _ = ca.issue("broker", server=True).write(tmp_path, "server")
    _, other_key = ca.issue("other").write(tmp_path, "other")

    with pytest.raises(ConfigurationError, match="is not the key of the first certificate"):
        load_tls_files(cert, other_key)


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        ("cert", "BROKER_TLS_CERT .*: not PEM certificates"),
        ("key", "BROKER_TLS_KEY .*: not an unencrypted PEM private key"),
        ("ca", "BROKER_TLS_CLIENT_CA .*: not PEM certificates"),
    ],
)
def test_a_file_that_is_not_pem_is_refused_naming_its_setting(
    ca: CertificateAuthority, tmp_path: Path, broken: str, complaint: str
) -> None:
    cert, key = ca.issue("broker", server=True).write(tmp_path, "server")
    client_ca = tmp_path / "ca.crt"
    client_ca.write_bytes(ca.pem)
    {"cert": cert, "key": key, "ca": client_ca}[broken].write_text("not pem at all\n")

    with pytest.raises(ConfigurationError, match=complaint):
        load_tls_files(cert, key, client_ca)


def test_a_missing_file_is_refused(ca: CertificateAuthority, tmp_path: Path) -> None:
    _, key = ca.issue("broker", server=True).write(tmp_path, "server")

    with pytest.raises(ConfigurationError, match=r"BROKER_TLS_CERT .*: cannot read it"):
        load_tls_files(tmp_path / "absent.crt", key)
