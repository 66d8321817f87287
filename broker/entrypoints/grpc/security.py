"""The server's security from the settings: TLS credentials and how callers are authenticated."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from broker.bootstrap import load_tls, load_tokens
from broker.domain.audit import ANONYMOUS_ACTOR
from broker.entrypoints.grpc.auth import (
    Anonymous,
    Authenticator,
    BearerTokens,
    ClientCertificates,
)
from broker.entrypoints.grpc.tls import ReloadableTls
from broker.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSecurity:
    authenticator: Authenticator = field(default_factory=Anonymous)
    # None: plaintext.
    credentials: grpc.ServerCredentials | None = None
    # Auth mode token: where the authenticator's tokens come from.
    tokens_file: Path | None = None
    # With TLS from the settings' files: what re-reads them.
    tls: ReloadableTls | None = None

    def reload_tls(self) -> None:
        """Re-reads the certificate, key and client CA, if served; when they are unusable,
        raises ConfigurationError and the ones in force stay."""
        if self.tls is not None:
            self.tls.reload()

    def reload_tokens(self) -> None:
        """Re-reads the tokens file, if any; when it is unusable, raises ConfigurationError and
        the tokens in force stay."""
        if self.tokens_file is None or not isinstance(self.authenticator, BearerTokens):
            return
        tokens = load_tokens(self.tokens_file)
        self.authenticator.replace(tokens)
        log.info("reloaded the tokens file %s: %d tokens", self.tokens_file, len(tokens))


# Tests and the demo: plaintext, every caller anonymous.
PLAINTEXT_ANONYMOUS = ServerSecurity()


def server_security(settings: Settings) -> ServerSecurity:
    """What the settings ask for, every file read and checked; raises ConfigurationError naming
    each setting missing, or the first file that is unusable."""
    problems = settings.security_problems()
    if problems:
        raise ConfigurationError("\n".join(problems))
    files = load_tls(settings)
    tls = None if files is None else ReloadableTls(settings, files)
    security = ServerSecurity(
        _authenticator(settings),
        None if tls is None else tls.credentials,
        settings.tokens_file,
        tls,
    )
    _log_mode(settings)
    return security


def _log_mode(settings: Settings) -> None:
    transport = "TLS" if settings.tls_cert else "plaintext"
    if settings.authentication != "none":
        log.info("authentication: %s, over %s", settings.authentication, transport)
        return
    log.warning(
        "authentication is off (auth mode none): every caller is %r, over %s",
        ANONYMOUS_ACTOR,
        transport,
    )
    if settings.policy_file is None:
        log.warning("no access policy (BROKER_POLICY_FILE): every caller may do everything")


def _authenticator(settings: Settings) -> Authenticator:
    if settings.authentication == "token":
        assert settings.tokens_file is not None, "checked by Settings.security_problems"
        tokens = load_tokens(settings.tokens_file)
        log.info("tokens file %s: %d tokens", settings.tokens_file, len(tokens))
        return BearerTokens(tokens)
    if settings.authentication == "mtls":
        return ClientCertificates()
    return Anonymous()
