"""The WebhookPoster port over HTTP: one POST, answered 2xx or counted a failure."""

import urllib.error
import urllib.request
from collections.abc import Mapping

from broker.domain.notifications import DeliveryFailed

# A destination that takes longer than this is counted as down; the delivery is retried.
TIMEOUT_SECONDS = 10.0


class HttpPoster:
    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self._timeout = timeout

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:
                answer.read()
        except urllib.error.HTTPError as error:
            raise DeliveryFailed(f"HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DeliveryFailed(f"unreachable: {reason}") from None
