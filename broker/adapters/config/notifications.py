"""The notification destinations the settings name (BROKER_WEBHOOK_URL, BROKER_SLACK_WEBHOOK_URL),
each with a key that names it in the broker's records and metrics without its URL."""

import hashlib
from urllib.parse import urlsplit

from broker.domain.notifications import Destination, DestinationKind
from broker.service.notifying import Notifications
from broker.settings import Settings, webhook_urls


def notifications_from(settings: Settings) -> Notifications:
    destinations = [
        destination(DestinationKind.WEBHOOK, url) for url in webhook_urls(settings.webhook_url)
    ]
    if settings.slack_webhook_url is not None:
        url = settings.slack_webhook_url.get_secret_value()
        destinations.append(destination(DestinationKind.SLACK, url))
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    return Notifications(tuple(destinations), secret.encode())


def destination(kind: DestinationKind, url: str) -> Destination:
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    parts = urlsplit(url)
    return Destination(kind, url, f"{kind.value}:{digest}", f"{parts.scheme}://{parts.netloc}/…")
