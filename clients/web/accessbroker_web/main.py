"""`accessbroker-web`: serves the page (uvicorn) against the broker named by BROKER_ADDRESS."""

import sys

import uvicorn

from accessbroker import BrokerClient
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
    app = create_app(
        settings, lambda: BrokerClient(settings.broker_address, token=settings.token or None)
    )
    uvicorn.run(app, host=host, port=int(port), log_level="info")
