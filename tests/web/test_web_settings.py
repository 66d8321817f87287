"""The web app's settings: refused at start, naming the variable, when they cannot work."""

from pathlib import Path

import pytest

from accessbroker_web.settings import SettingsError, TlsFiles, settings_from

PROXY = {"ACCESSBROKER_WEB_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1/32"}


def test_proxy_mode_trusts_the_networks_named() -> None:
    settings = settings_from(PROXY)

    assert settings.auth == "proxy"
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert settings.tls is None


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({}, "ACCESSBROKER_WEB_TRUSTED_PROXIES must name the proxy's networks"),
        ({"ACCESSBROKER_WEB_TRUSTED_PROXIES": "10.0.0.0/33"}, "ACCESSBROKER_WEB_TRUSTED_PROXIES"),
        ({"ACCESSBROKER_WEB_AUTH": "dev"}, "ACCESSBROKER_WEB_DEV_IDENTITIES must list"),
        ({"ACCESSBROKER_WEB_AUTH": "oidc"}, "'oidc' is not proxy or dev"),
        ({**PROXY, "ACCESSBROKER_WEB_TLS_CA": "/ca.pem"}, "go together: set all three"),
    ],
)
def test_settings_that_cannot_work_are_refused(environ: dict[str, str], complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint):
        settings_from(environ)


def test_the_tls_files_for_a_broker_in_mtls_mode() -> None:
    files = {f"ACCESSBROKER_WEB_TLS_{n}": f"/tls/{n.lower()}.pem" for n in ("CA", "CERT", "KEY")}

    settings = settings_from({**PROXY, **files})

    assert settings.tls == TlsFiles(
        Path("/tls/ca.pem"), Path("/tls/cert.pem"), Path("/tls/key.pem")
    )
