"""What every response and every state-changing request get: security headers, and a CSRF
token (a random value in a SameSite=Strict cookie that each POST must repeat, in a form field
or, from htmx, the X-CSRF-Token header)."""

import hmac
import secrets
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, Response

CSRF_COOKIE = "accessbroker_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# No inline script or style anywhere: htmx is a file of this app's, its indicator styles off.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Pages show grants: never kept by a browser or a proxy.
    "Cache-Control": "no-store",
}

Next = Callable[[Request], Awaitable[Response]]


async def protect(request: Request, call_next: Next) -> Response:
    """Adds the headers, and the CSRF cookie to a visitor that has none."""
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    request.state.csrf_token = token
    response = await call_next(request)
    response.headers.update(HEADERS)
    if CSRF_COOKIE not in request.cookies:
        set_cookie(response, CSRF_COOKIE, token)
    return response


def set_cookie(response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, secure=True, httponly=True, samesite="strict", path="/")


async def require_csrf(request: Request) -> None:
    """Refuses (403) a state-changing request that does not repeat its cookie's token."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        sent = str((await request.form()).get(CSRF_FIELD, ""))
    if not cookie or not hmac.compare_digest(cookie, sent):
        raise HTTPException(403, "the page's form has expired: reload it and try again")
