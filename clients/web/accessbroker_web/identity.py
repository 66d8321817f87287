"""Who the person using the page is.

proxy: the identity header an authenticating proxy (oauth2-proxy, an AWS ALB) sets, believed
only from the proxy's own networks; anything else is not identified (401). dev: an identity
picked from a list, kept in a cookie; the sandbox only, and every page says so.
"""

import ipaddress

from fastapi import Request

from accessbroker_web.settings import WebSettings

DEV_COOKIE = "accessbroker_dev_identity"


class Unidentified(Exception):
    """The request names no person the page may believe."""


def person_of(request: Request, settings: WebSettings) -> str:
    if settings.auth == "dev":
        picked = request.cookies.get(DEV_COOKIE, "")
        if picked not in settings.dev_identities:
            raise Unidentified("pick an identity first")
        return picked
    return _from_proxy(request, settings)


def _from_proxy(request: Request, settings: WebSettings) -> str:
    peer = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        raise Unidentified("the request did not come through the proxy") from None
    if not any(address in network for network in settings.trusted_proxies):
        raise Unidentified("the request did not come through the proxy")
    for header in settings.identity_headers:
        value = request.headers.get(header, "").strip()
        if value:
            return value
    raise Unidentified("the proxy named no one")
