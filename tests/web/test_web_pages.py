"""The web page over the broker: who the person is (proxy header from trusted networks, or a
dev pick), the protection on every response and form, and the whole story: request with a
live preview and field errors, a grant that needs approval, the approver's page, revoking."""

import ipaddress
import re

import pytest
from starlette.testclient import TestClient

from accessbroker_web.protection import CSRF_COOKIE
from accessbroker_web.settings import WebSettings
from broker.domain.access import GrantState
from tests.unit.service.fakes import INSTANCE, World
from tests.web.conftest import ADMIN, APPROVER, REQUESTER, csrf, sign_in, web_client

PROXY = WebSettings(auth="proxy", trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))


def form(client: TestClient, **fields: str) -> dict[str, str]:
    base = {
        "instance": INSTANCE,
        "bucket": "photos",
        "access": "read",
        "prefix": "",
        "ttl": "",
        "reason": "why",
    }
    return {**base, **fields, "csrf_token": csrf(client)}


@pytest.mark.parametrize(
    ("peer", "headers", "status"),
    [
        ("10.1.2.3", {"X-Forwarded-Email": "dana"}, 200),
        ("10.1.2.3", {}, 401),
        ("192.168.0.9", {"X-Forwarded-Email": "dana"}, 401),
    ],
)
def test_the_person_is_the_proxys_header_from_its_networks_only(
    broker_address: str, peer: str, headers: dict[str, str], status: int
) -> None:
    client = web_client(broker_address, PROXY, peer=peer)

    answer = client.get("/grants", headers=headers)

    assert answer.status_code == status
    if status == 200:
        assert "Signed in as <strong>dana</strong>" in answer.text


def test_every_page_is_protected_and_a_form_without_its_token_is_refused(dev: TestClient) -> None:
    page = dev.get("/dev/login")
    refused = dev.post("/dev/login", data={"identity": REQUESTER})

    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert CSRF_COOKIE in cookie
    assert all(flag in cookie.lower() for flag in ("secure", "httponly", "samesite=strict"))
    assert refused.status_code == 403
    # No inline script: the only script is the app's own file.
    assert re.findall(r"<script[^>]*>", page.text) == [
        '<script src="/static/htmx-2.0.11.min.js" defer>'
    ]


def test_the_preview_shows_the_policy_and_the_broker_checks_each_field(
    dev: TestClient, w: World
) -> None:
    sign_in(dev, REQUESTER)

    good = dev.post("/request/preview", data=form(dev, prefix="albums/"))
    bad = dev.post("/request/preview", data=form(dev, instance="i-1", ttl="soon"))

    assert "Granted at once." in good.text
    assert '"s3:GetObject"' in good.text and "albums/" in good.text
    assert w.db.grants() == []  # a preview changes nothing
    instance_error = re.search(r'id="instance-error"[^>]*>([^<]*)<', bad.text)
    assert instance_error is not None and "i-0123456789abcdef0" in instance_error.group(1)
    assert re.search(r'id="ttl-error"[^>]*>invalid duration', bad.text)


def test_a_request_that_needs_approval_is_approved_by_the_approver(
    broker_address: str, w: World
) -> None:
    settings = WebSettings(auth="dev", dev_identities=(REQUESTER, APPROVER))
    requester, approver = web_client(broker_address, settings), web_client(broker_address, settings)
    sign_in(requester, REQUESTER)
    sign_in(approver, APPROVER)

    preview = requester.post("/request/preview", data=form(requester, bucket="vault"))
    asked = requester.post("/request", data=form(requester, bucket="vault"))
    [waiting] = w.db.grants()
    listed = approver.get("/waiting")
    approved = approver.post(
        f"/grants/{waiting.grant_id}/approve",
        data={"reason": "ok", "ttl": "", "csrf_token": csrf(approver)},
    )

    assert "Needs approval by 1 of erin before AWS changes." in preview.text
    assert "awaiting approval" in asked.text and waiting.requested_by == REQUESTER
    assert f'action="/grants/{waiting.grant_id}/approve"' in listed.text  # decided from the list
    assert f'action="/grants/{waiting.grant_id}/deny"' in listed.text
    assert 'State: <span class="state state-active">active</span>' in approved.text
    # The instance's policy names the requester's grants: shown to them, not to the approver.
    assert '"s3:GetObject"' in requester.get(f"/grants/{waiting.grant_id}").text
    assert '"s3:GetObject"' not in approved.text
    assert w.grant_of(waiting.grant_id).state is GrantState.ACTIVE


def test_a_refusal_is_shown_in_the_brokers_words(dev: TestClient, w: World) -> None:
    sign_in(dev, REQUESTER)

    refused = dev.post("/request", data=form(dev, bucket="secrets"))

    assert refused.status_code == 422
    assert "no rule matched" in refused.text and "(PERMISSION_DENIED)" in refused.text
    assert w.db.grants() == []


def test_the_requester_revokes_and_nobody_else_sees_the_grant(
    broker_address: str, w: World
) -> None:
    settings = WebSettings(auth="dev", dev_identities=(REQUESTER, APPROVER))
    owner, other = web_client(broker_address, settings), web_client(broker_address, settings)
    sign_in(owner, REQUESTER)
    sign_in(other, APPROVER)
    owner.post("/request", data=form(owner))
    [granted] = w.db.grants()

    hidden = other.get(f"/grants/{granted.grant_id}")
    revoked = owner.post(
        f"/grants/{granted.grant_id}/revoke", data={"reason": "done", "csrf_token": csrf(owner)}
    )

    assert hidden.status_code == 403 and "requested by another caller" in hidden.text
    assert 'State: <span class="state state-revoked">revoked</span>' in revoked.text
    assert w.grant_of(granted.grant_id).requested_by == REQUESTER


def test_admins_read_the_trail_and_it_follows_new_events(broker_address: str, w: World) -> None:
    settings = WebSettings(auth="dev", dev_identities=(REQUESTER, ADMIN))
    requester, admin = web_client(broker_address, settings), web_client(broker_address, settings)
    sign_in(requester, REQUESTER)
    sign_in(admin, ADMIN)
    requester.post("/request", data=form(requester))
    refused = requester.get("/audit")
    trail = admin.get("/audit")
    last = max(e.event_id for e in w.db.snapshot().audit)
    [granted] = w.db.grants()
    requester.post(
        f"/grants/{granted.grant_id}/revoke", data={"reason": "done", "csrf_token": csrf(requester)}
    )
    more = admin.get(f"/audit/more?after={last}")

    assert refused.status_code == 403 and "only an admin may read the audit trail" in refused.text
    assert "grant.requested" in trail.text and "<td>web</td>" in trail.text  # via the page
    assert "grant.revoke_requested" in more.text and "grant.requested" not in more.text
    assert f"/audit/more?after={max(e.event_id for e in w.db.snapshot().audit)}" in more.text
