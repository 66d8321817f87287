"""The server's TLS credentials, reloadable: gRPC asks for the certificate configuration at each
new connection (dynamic SSL credentials), so files re-read on SIGHUP serve every connection made
after, while connections made before keep theirs until they close."""

import logging
import threading
from collections.abc import Callable
from typing import cast

import grpc

from broker.bootstrap import load_tls
from broker.domain.credentials import TlsFiles
from broker.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)


class ReloadableTls:
    def __init__(self, settings: Settings, files: TlsFiles) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        # A configuration read since gRPC last asked: it takes it at the next handshake.
        self._pending: grpc.ServerCertificateConfiguration | None = None
        # Whether clients must present certificates (mtls) is the mode's, fixed at start.
        # gRPC documents None as "no change"; its type stubs leave None out.
        fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], self._fetch)
        self.credentials = grpc.dynamic_ssl_server_credentials(
            _configuration(files),
            fetch,
            require_client_authentication=files.client_ca is not None,
        )

    def reload(self) -> None:
        """Re-reads the certificate, key and client CA; ConfigurationError, with the ones in
        force kept, when they cannot be used."""
        files = load_tls(self._settings)
        if files is None:
            raise ConfigurationError("BROKER_TLS_CERT and BROKER_TLS_KEY are no longer set")
        with self._lock:
            self._pending = _configuration(files)
        log.info("reloaded the TLS files: new connections get the new certificate")

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """For gRPC, at each handshake: the configuration read since it last asked, if any."""
        with self._lock:
            pending, self._pending = self._pending, None
        return pending


def _configuration(files: TlsFiles) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(files.private_key, files.certificate_chain)], root_certificates=files.client_ca
    )
