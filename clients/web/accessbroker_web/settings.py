"""The web app's settings, from ACCESSBROKER_WEB_* variables (and BROKER_ADDRESS)."""

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

AuthMode = Literal["proxy", "dev"]
# The headers an authenticating proxy names the person in: oauth2-proxy's, then AWS ALB's.
DEFAULT_IDENTITY_HEADERS = ("X-Forwarded-Email", "X-Forwarded-User", "X-Amzn-Oidc-Identity")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the broker's CA, and the app's certificate and key."""

    ca: Path
    cert: Path
    key: Path


class SettingsError(ValueError):
    """A setting the web app cannot start with; the message names it."""


@dataclass(frozen=True)
class WebSettings:
    broker_address: str = "127.0.0.1:50051"
    # The web app's own bearer token at the broker, which lists it among its delegates.
    token: str = ""
    auth: AuthMode = "proxy"
    # proxy: the networks the authenticating proxy calls from; anything else gets 401.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    identity_headers: tuple[str, ...] = DEFAULT_IDENTITY_HEADERS
    # dev: the identities one may pick (the sandbox's).
    dev_identities: tuple[str, ...] = field(default_factory=tuple)
    listen: str = "127.0.0.1:8080"
    # A broker in mtls mode: its CA, and the app's own certificate and key.
    tls: "TlsFiles | None" = None


def settings_from(environ: Mapping[str, str] = os.environ) -> WebSettings:
    auth = environ.get("ACCESSBROKER_WEB_AUTH", "proxy")
    if auth not in ("proxy", "dev"):
        raise SettingsError(f"ACCESSBROKER_WEB_AUTH: {auth!r} is not proxy or dev")
    settings = WebSettings(
        broker_address=environ.get("BROKER_ADDRESS", "127.0.0.1:50051"),
        token=environ.get("ACCESSBROKER_WEB_TOKEN", ""),
        auth="dev" if auth == "dev" else "proxy",
        trusted_proxies=_networks(environ.get("ACCESSBROKER_WEB_TRUSTED_PROXIES", "")),
        dev_identities=_listed(environ.get("ACCESSBROKER_WEB_DEV_IDENTITIES", "")),
        listen=environ.get("ACCESSBROKER_WEB_LISTEN", "127.0.0.1:8080"),
        tls=_tls_files(environ),
    )
    if settings.auth == "proxy" and not settings.trusted_proxies:
        raise SettingsError(
            "ACCESSBROKER_WEB_TRUSTED_PROXIES must name the proxy's networks (CIDRs) in proxy mode"
        )
    if settings.auth == "dev" and not settings.dev_identities:
        raise SettingsError("ACCESSBROKER_WEB_DEV_IDENTITIES must list identities in dev mode")
    return settings


def _tls_files(environ: Mapping[str, str]) -> "TlsFiles | None":
    """The mTLS files: all three, or none."""
    named = [environ.get(f"ACCESSBROKER_WEB_TLS_{name}", "") for name in ("CA", "CERT", "KEY")]
    if not any(named):
        return None
    if not all(named):
        raise SettingsError(
            "ACCESSBROKER_WEB_TLS_CA, ACCESSBROKER_WEB_TLS_CERT and ACCESSBROKER_WEB_TLS_KEY "
            "go together: set all three (a broker in mtls mode) or none"
        )
    ca, cert, key = (Path(value) for value in named)
    return TlsFiles(ca, cert, key)


def _listed(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(cidr) for cidr in _listed(text))
    except ValueError as error:
        raise SettingsError(f"ACCESSBROKER_WEB_TRUSTED_PROXIES: {error}") from None
