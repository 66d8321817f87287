"""The server's certificate, key and client CA (PEM), checked when read: a broken file is a
clear refusal to start instead of gRPC's "Failed to bind" or handshakes that all fail."""

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from broker.domain.credentials import TlsFiles
from broker.settings import ConfigurationError


def load_tls_files(certificate: Path, key: Path, client_ca: Path | None = None) -> TlsFiles:
    chain = _certificates(certificate, "BROKER_TLS_CERT")
    key_pem = _read(key, "BROKER_TLS_KEY")
    try:
        private_key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        # The message of the error could quote the key; it is not shown.
        raise ConfigurationError(
            f"BROKER_TLS_KEY {key}: not an unencrypted PEM private key"
        ) from None
    if private_key.public_key() != chain[0].public_key():
        raise ConfigurationError(
            f"BROKER_TLS_KEY {key} is not the key of the first certificate of BROKER_TLS_CERT "
            f"{certificate}"
        )
    ca = None if client_ca is None else _certificates(client_ca, "BROKER_TLS_CLIENT_CA")
    return TlsFiles(
        certificate_chain=_pem(chain),
        private_key=key_pem,
        client_ca=None if ca is None else _pem(ca),
    )


def _certificates(path: Path, variable: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(_read(path, variable))
    except ValueError:
        raise ConfigurationError(f"{variable} {path}: not PEM certificates") from None
    return certificates


def _pem(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"{variable} {path}: cannot read it: {error.strerror}") from None
