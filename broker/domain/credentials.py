"""What the server's configuration says about credentials: whose bearer tokens are whose, and
the TLS material it presents. Read from files by broker/adapters/config, used by the gRPC
entrypoint's authentication."""

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredToken:
    """A bearer token, as the SHA-256 digest of the token: the broker never holds the token."""

    identity: str
    sha256: bytes


@dataclass(frozen=True)
class TlsFiles:
    certificate_chain: bytes
    private_key: bytes
    # None: no client certificates are asked for.
    client_ca: bytes | None = None
