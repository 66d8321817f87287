"""The pages: request access (with a live preview), a grant, my grants, waiting for me, an
instance, and the audit trail."""

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from accessbroker import AuditEvent, BrokerClient, Grant, GrantResult, GrantState, errors
from accessbroker.cli.durations import parse_duration
from accessbroker_web.protection import require_csrf

if TYPE_CHECKING:
    from accessbroker_web.app import Pages

Text = Annotated[str, Form()]
CSRF = Depends(require_csrf)
# While a grant is in one of these, its page asks for news every second.
SETTLING = {GrantState.AWAITING_APPROVAL, GrantState.PENDING, GrantState.REVOKING}


@dataclass(frozen=True)
class Asked:
    """The request form as the person filled it in."""

    instance: str = ""
    bucket: str = ""
    access: str = "read"
    prefix: str = ""
    ttl: str = ""
    reason: str = ""
    # Where the instance lives (the broker's accounts file); empty: its own account and region.
    account: str = ""
    region: str = ""


def asked_form(
    *,
    instance: Text = "",
    bucket: Text = "",
    access: Text = "read",
    prefix: Text = "",
    ttl: Text = "",
    reason: Text = "",
    account: Text = "",
    region: Text = "",
) -> Asked:
    return Asked(instance, bucket, access, prefix, ttl, reason, account, region)


Form_ = Annotated[Asked, Depends(asked_form)]


def router(pages: "Pages") -> APIRouter:
    routes = APIRouter()
    _identity_routes(routes, pages)
    _request_routes(routes, pages)
    _grant_routes(routes, pages)
    _listing_routes(routes, pages)
    return routes


def _identity_routes(routes: APIRouter, pages: "Pages") -> None:
    @routes.get("/")
    def home() -> Response:
        return RedirectResponse("/grants", status_code=303)

    @routes.get("/dev/login")
    def dev_login(request: Request) -> HTMLResponse:
        return pages.render(request, "dev_login.html", identities=pages.settings.dev_identities)

    @routes.post("/dev/login", dependencies=[CSRF])
    def pick(identity: Text) -> Response:
        if pages.settings.auth != "dev" or identity not in pages.settings.dev_identities:
            return RedirectResponse("/dev/login", status_code=303)
        return pages.pick_identity(identity)


def _request_routes(routes: APIRouter, pages: "Pages") -> None:
    @routes.get("/request")
    def request_form(request: Request) -> HTMLResponse:
        pages.person(request)
        return pages.render(request, "request.html", asked=Asked(), preview=None)

    @routes.post("/request/preview", dependencies=[CSRF])
    def preview(request: Request, asked: Form_) -> HTMLResponse:
        result, problems = _ask(pages, request, asked, dry_run=True)
        return pages.render(request, "_preview_response.html", preview=result, problems=problems)

    @routes.post("/request", dependencies=[CSRF])
    def submit(request: Request, asked: Form_) -> Response:
        result, problems = _ask(pages, request, asked, dry_run=False)
        if result is None:
            values = {"asked": asked, "preview": None, "problems": problems}
            return pages.render(request, "request.html", status_code=422, **values)
        return RedirectResponse(f"/grants/{result.grant.grant_id}", status_code=303)


def _ask(
    pages: "Pages", request: Request, asked: Asked, *, dry_run: bool
) -> tuple[GrantResult | None, dict[str, list[str]]]:
    """The broker's answer to the form (a dry run, or the request itself), or the problems
    found, by field ("" for what is not a field's). A ttl the page cannot read is a problem of
    its own; the broker still checks the rest, in a dry run."""
    ttl, ttl_problem = _ttl_read(asked.ttl)
    try:
        result = pages.as_person(request).grant(
            asked.instance.strip(),
            asked.bucket.strip(),
            asked.access,
            prefix=asked.prefix,
            ttl=ttl,
            reason=asked.reason,
            dry_run=dry_run or bool(ttl_problem),
            account=asked.account.strip(),
            region=asked.region.strip(),
        )
        problems: dict[str, list[str]] = {}
    except errors.InvalidArgument as invalid:
        result, problems = None, _by_field(invalid)
    except (errors.BrokerError, ValueError) as error:
        result, problems = None, {"": [_said(error)]}
    if ttl_problem:
        problems.setdefault("ttl", []).append(ttl_problem)
        return None, problems
    return result, problems


def _ttl_read(text: str) -> tuple[timedelta | None, str]:
    """The ttl written in the form, or why it cannot be read."""
    try:
        return _ttl(text), ""
    except ValueError as error:
        return None, str(error)


def _ttl(text: str) -> timedelta | None:
    """A duration such as 8h (None for an empty field); ValueError saying what is accepted."""
    return parse_duration(text) if text.strip() else None


# The broker's names for the form's fields.
FORM_FIELDS = {"instance_id": "instance"}


def _by_field(invalid: errors.InvalidArgument) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    for field, why in invalid.field_violations:
        problems.setdefault(FORM_FIELDS.get(field, field), []).append(why)
    return problems or {"": [_said(invalid)]}


def _said(error: BaseException) -> str:
    """A refusal in the broker's words, as brokerctl prints it."""
    if isinstance(error, errors.BrokerError):
        return f"{' '.join(error.message.split()).rstrip('.')} ({error.code.name})"
    return str(error)


def _grant_routes(routes: APIRouter, pages: "Pages") -> None:
    @routes.get("/grants/{grant_id}")
    def grant_page(request: Request, grant_id: str) -> Response:
        return _grant(pages, request, grant_id, "grant.html")

    @routes.get("/grants/{grant_id}/status")
    def grant_status(request: Request, grant_id: str, seen: str = "") -> Response:
        """The state, for the page to refresh in place; when it moved from the state the page
        shows (`seen`), the whole page reloads instead, so its actions match the state."""
        return _grant(pages, request, grant_id, "_grant_status.html", seen=seen)

    @routes.post("/grants/{grant_id}/{action}", dependencies=[CSRF])
    def act(
        request: Request,
        grant_id: str,
        action: str,
        reason: Text = "",
        ttl: Text = "",
    ) -> Response:
        try:
            _act(pages.as_person(request), grant_id, action, reason=reason, ttl=ttl)
        except (errors.BrokerError, ValueError) as error:
            return _grant(pages, request, grant_id, "grant.html", failure=_said(error))
        return RedirectResponse(f"/grants/{grant_id}", status_code=303)


def _act(broker: BrokerClient, grant_id: str, action: str, *, reason: str, ttl: str) -> None:
    if action == "approve":
        broker.approve(grant_id, reason=reason, ttl=_ttl(ttl))
    elif action == "deny":
        broker.deny(grant_id, reason=reason)
    elif action == "revoke":
        broker.revoke(grant_id, reason=reason)
    elif action == "extend":
        extension = _ttl(ttl)
        if extension is None:
            raise ValueError("say how long the grant should last from now, e.g. 8h")
        broker.extend(grant_id, extension, reason=reason)
    else:
        raise ValueError(f"there is no action {action!r}")


def _policy_of(broker: BrokerClient, grant: Grant) -> dict[str, Any] | None:
    """The whole policy of the grant's instance, where it lives, as the broker shows it."""
    return broker.describe(grant.instance_id, account=grant.account, region=grant.region).policy


def _grant(
    pages: "Pages",
    request: Request,
    grant_id: str,
    template: str,
    *,
    failure: str = "",
    seen: str = "",
) -> Response:
    """The grant's page, or its state alone (what the page refreshes each second); with `seen`
    (the state the page shows), a reload of the whole page when the grant has moved on."""
    broker = pages.as_person(request)
    whole = template == "grant.html"
    try:
        grant = broker.get(grant_id)
        trail = _trail_of(broker, grant_id) if whole else None
        policy = _policy_of(broker, grant) if whole else None
    except errors.BrokerError as error:
        return pages.refused(request, error, "error.html", message=_said(error))
    if seen and grant.state.value != seen:
        return Response(headers={"HX-Refresh": "true"})
    values: dict[str, Any] = {
        "grant": grant,
        "settling": grant.state in SETTLING,
        "trail": trail,
        "policy": policy,
    }
    return pages.render(request, template, failure=failure, **values)


def _trail_of(broker: BrokerClient, grant_id: str) -> list[AuditEvent] | None:
    """The grant's audit events, when the person may read the trail (admins); else None."""
    try:
        return list(broker.audit(grant_id=grant_id))
    except errors.PermissionDenied:
        return None


def _events(
    pages: "Pages", request: Request, instance: str, grant: str, *, after: int
) -> list[AuditEvent]:
    trail = pages.as_person(request).audit(instance_id=instance or None, grant_id=grant or None)
    return [event for event in trail if event.event_id > after]


def _last(events: list[AuditEvent], after: int) -> int:
    return events[-1].event_id if events else after


def _listing_routes(routes: APIRouter, pages: "Pages") -> None:
    @routes.get("/grants")
    def my_grants(request: Request, state: str = "") -> HTMLResponse:
        try:
            grants = list(pages.as_person(request).list_grants(state=state or None))
        except (errors.BrokerError, ValueError) as error:
            return pages.render(
                request,
                "grants.html",
                status_code=422,
                grants=[],
                state=state,
                failure=_said(error),
            )
        return pages.render(request, "grants.html", grants=grants, state=state, failure="")

    @routes.get("/waiting")
    def waiting(request: Request) -> HTMLResponse:
        grants = list(pages.as_person(request).list_grants(awaiting_my_approval=True))
        return pages.render(request, "waiting.html", grants=grants)

    @routes.get("/audit")
    def audit(request: Request, instance: str = "", grant: str = "") -> HTMLResponse:
        try:
            events = _events(pages, request, instance, grant, after=0)
        except errors.BrokerError as error:
            return pages.refused(request, error, "error.html", message=_said(error))
        filters: dict[str, Any] = {"instance": instance, "grant": grant}
        return pages.render(request, "audit.html", events=events, last=_last(events, 0), **filters)

    @routes.get("/audit/more")
    def audit_more(request: Request, after: int, instance: str = "", grant: str = "") -> Response:
        """The events written since the page last looked, for it to append; and the next look."""
        try:
            events = _events(pages, request, instance, grant, after=after)
        except errors.BrokerError as error:
            return pages.refused(request, error, "error.html", message=_said(error))
        filters: dict[str, Any] = {"instance": instance, "grant": grant}
        last = _last(events, after)
        return pages.render(request, "_audit_more.html", events=events, last=last, **filters)

    @routes.get("/instances/{instance_id}")
    def instance(
        request: Request, instance_id: str, account: str = "", region: str = ""
    ) -> HTMLResponse:
        try:
            access = pages.as_person(request).describe(instance_id, account=account, region=region)
        except errors.BrokerError as error:
            return pages.refused(request, error, "error.html", message=_said(error))
        return pages.render(request, "instance.html", access=access)
