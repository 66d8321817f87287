"""Throwaway credentials: tokens files, and X.509 certificates for TLS and mTLS (a CA, and
certificates it signs)."""

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from broker.domain.credentials import StoredToken


def stored_tokens(tokens: dict[str, str]) -> list[StoredToken]:
    """Each identity's token as the broker keeps it: the token's SHA-256 digest."""
    return [StoredToken(i, hashlib.sha256(t.encode()).digest()) for i, t in tokens.items()]


def write_tokens_file(path: Path, tokens: dict[str, str]) -> Path:
    """A BROKER_TOKENS_FILE giving each identity its token."""
    lines = ["tokens:"]
    for stored in stored_tokens(tokens):
        lines += [f"  - identity: {stored.identity}", f"    sha256: {stored.sha256.hex()}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    certificate: bytes
    key: bytes

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Writes NAME.crt and NAME.key; returns their paths."""
        certificate, key = directory / f"{name}.crt", directory / f"{name}.key"
        certificate.write_bytes(self.certificate)
        key.write_bytes(self.key)
        return certificate, key


class CertificateAuthority:
    def __init__(self, name: str = "accessbroker test CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = _name(name)
        self.certificate = _build(self._name, self._key.public_key(), self._name, self._key, [])
        self.pem = self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self, common_name: str = "", *, uris: tuple[str, ...] = (), server: bool = False
    ) -> KeyPair:
        """A certificate for `common_name` (none when ""), with URI SANs, or for a server on
        127.0.0.1 and localhost."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        if server:
            names += [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        certificate = _build(_name(common_name), key.public_key(), self._name, self._key, names)
        return KeyPair(
            certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )


def _name(common_name: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "accessbroker tests")]
    if common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _build(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    alternative_names: list[x509.GeneralName],
) -> x509.Certificate:
    now = datetime.now(UTC)
    is_ca = subject == issuer
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if alternative_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alternative_names), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())
