"""`accessbroker-web`: serves the page (uvicorn) against the broker named by BROKER_ADDRESS."""

import sys

import uvicorn

from accessbroker import BrokerClient, mutual_tls
from accessbroker_web.app import create_app
from accessbroker_web.settings import SettingsError, WebSettings, settings_from


def main() -> int:
    try:
        settings = settings_from()
    except SettingsError as error:
        print(f"accessbroker-web: invalid configuration: {error}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


def serve(settings: WebSettings) -> None:
    host, _, port = settings.listen.rpartition(":")

    def connect() -> BrokerClient:
        files = settings.tls
        tls = mutual_tls(files.ca, files.cert, files.key) if files else None
        return BrokerClient(settings.broker_address, token=settings.token or None, tls=tls)

    uvicorn.run(create_app(settings, connect), host=host, port=int(port), log_level="info")
