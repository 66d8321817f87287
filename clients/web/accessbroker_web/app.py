"""The web app: pages over the broker's API, each call made on behalf of the person using it.

The app holds no database and no AWS credentials: it calls the broker through the SDK with its
own token, naming the person (`acting_for`), and the broker decides and audits everything as
that person. Pages render the broker's answers, and its refusals in its own words.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from accessbroker import BrokerClient, GrantState, errors
from accessbroker_web import views
from accessbroker_web.identity import DEV_COOKIE, Unidentified, person_of
from accessbroker_web.protection import protect, set_cookie
from accessbroker_web.settings import WebSettings

HERE = Path(__file__).parent


def create_app(settings: WebSettings, connect: Callable[[], BrokerClient]) -> FastAPI:
    """The app; `connect` opens the web app's own client of the broker, once."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.middleware("http")(protect)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    pages = Pages(settings, connect(), Jinja2Templates(directory=HERE / "templates"))
    app.exception_handler(Unidentified)(pages.unidentified)
    app.include_router(views.router(pages))
    return app


class Pages:
    """What every view needs: the settings, the broker, the templates, who is asking."""

    def __init__(
        self, settings: WebSettings, broker: BrokerClient, templates: Jinja2Templates
    ) -> None:
        self.settings, self.broker, self.templates = settings, broker, templates

    def person(self, request: Request) -> str:
        return person_of(request, self.settings)

    def as_person(self, request: Request) -> BrokerClient:
        """The broker, called on behalf of the person using the page."""
        return self.broker.acting_for(self.person(request))

    def render(
        self, request: Request, template: str, *, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        context = {
            "person": _known_person(self, request),
            "dev": self.settings.auth == "dev",
            "csrf_token": request.state.csrf_token,
            "GrantState": GrantState,
            **values,
        }
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)

    def refused(
        self, request: Request, error: errors.BrokerError, template: str, **values: Any
    ) -> HTMLResponse:
        return self.render(request, template, status_code=_status(error), error=error, **values)

    async def unidentified(self, request: Request, error: Exception) -> Response:
        if self.settings.auth == "dev":
            return RedirectResponse("/dev/login", status_code=303)
        return self.render(request, "unidentified.html", status_code=401, reason=str(error))

    def pick_identity(self, identity: str) -> Response:
        response = RedirectResponse("/grants", status_code=303)
        set_cookie(response, DEV_COOKIE, identity)
        return response


def _known_person(pages: Pages, request: Request) -> str:
    try:
        return pages.person(request)
    except Unidentified:
        return ""


def _status(error: errors.BrokerError) -> int:
    if isinstance(error, errors.InvalidArgument):
        return 422
    if isinstance(error, errors.PermissionDenied):
        return 403
    if isinstance(error, errors.NotFound):
        return 404
    if isinstance(error, errors.FailedPrecondition | errors.AlreadyExists):
        return 409
    return 503 if isinstance(error, errors.Unavailable) else 500
