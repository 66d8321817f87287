"""The whole story in a real Chromium (Debian's, driven by Playwright), against a real broker
process on the emulator: request access with a live policy preview and a field error shown at
its field, approval by a second person, the grant turning active on its own, the instance
really able to upload (checked as the instance), extend, revoke. A screenshot of each step is
written under the test's temporary directory."""

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from accessbroker import BrokerClient
from accessbroker_web.app import create_app
from accessbroker_web.settings import WebSettings
from broker.sandbox import Emulator
from broker.sandbox.instance_view import ALLOWED, NO_CREDENTIALS
from tests.credentials import write_tokens_file
from tests.e2e.broker_process import BrokerProcess
from tests.ports import free_port
from tests.waiting import wait_until

CHROMIUM = Path("/usr/lib/chromium/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does in CI)",
)

WEB_TOKEN = "browser-web-token-4c3b2a"
REQUESTER, APPROVER = "dana", "erin"
POLICY = """\
delegates: [web]
rules:
  - identities: [{requester}]
    buckets: ["{bucket}"]
    access: [upload]
    prefixes: ["shared/*"]
    max_ttl: 8h
    approval: {{approvers: [{approver}]}}
"""


@pytest.fixture(scope="module")
def broker(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory, buckets: tuple[str, str]
) -> Iterator[BrokerProcess]:
    directory = tmp_path_factory.mktemp("web-broker")
    policy = directory / "policy.yaml"
    policy.write_text(POLICY.format(requester=REQUESTER, approver=APPROVER, bucket=buckets[0]))
    process = BrokerProcess(
        emulator,
        f"sqlite:///{directory / 'broker.db'}",
        BROKER_AUTH_MODE="token",
        BROKER_TOKENS_FILE=str(write_tokens_file(directory / "tokens.yaml", {"web": WEB_TOKEN})),
        BROKER_POLICY_FILE=str(policy),
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def page_url(broker: BrokerProcess) -> Iterator[str]:
    settings = WebSettings(auth="dev", dev_identities=(REQUESTER, APPROVER))
    app = create_app(settings, lambda: BrokerClient(broker.address, token=WEB_TOKEN))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="the web app to serve")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@dataclass(frozen=True)
class Site:
    """The page's address, and the browser that visits it."""

    url: str
    browser: Browser


@pytest.fixture(scope="module")
def site(page_url: str) -> Iterator[Site]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield Site(page_url, launched)
        launched.close()


def signed_in(site: Site, identity: str) -> Page:
    page = site.browser.new_context().new_page()
    page.goto(f"{site.url}/dev/login")
    page.get_by_label(identity).check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text(f"Signed in as {identity}")).to_be_visible()
    return page


def test_request_approve_use_extend_revoke(
    site: Site,
    emulator: Emulator,
    instance_id: str,
    buckets: tuple[str, str],
    tmp_path: Path,
) -> None:
    bucket, shots = buckets[0], tmp_path / "screenshots"
    dana = signed_in(site, REQUESTER)
    dana.goto(f"{site.url}/request")

    dana.get_by_label("Instance").fill("i-1")
    expect(dana.locator("#instance-error")).to_contain_text("i-0123456789abcdef0")
    expect(dana.get_by_label("Instance")).to_be_focused()  # typing goes on where it was
    dana.screenshot(path=shots / "1-field-error.png")

    dana.get_by_label("Instance").fill(instance_id)
    dana.get_by_label("Bucket").fill(bucket)
    dana.get_by_label("Access").select_option("upload")
    dana.get_by_label("Prefix").fill("shared/")
    dana.get_by_label("For how long").fill("2h")
    dana.get_by_label("Reason").fill("quarterly upload")
    expect(dana.locator("#preview")).to_contain_text("Needs approval by 1 of erin")
    expect(dana.locator("#preview .policy")).to_contain_text(f"arn:aws:s3:::{bucket}/shared/*")
    expect(dana.locator("#instance-error")).to_be_empty()
    dana.screenshot(path=shots / "2-preview.png", full_page=True)

    dana.get_by_role("button", name="Request").click()
    expect(dana.locator("#status")).to_contain_text("awaiting approval")
    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "shared/a") == NO_CREDENTIALS

    erin = signed_in(site, APPROVER)
    erin.goto(f"{site.url}/waiting")
    expect(erin.get_by_role("article")).to_contain_text(f"dana: upload on s3://{bucket}/shared/")
    erin.get_by_label("Reason for approving").fill("fine for the quarter")
    erin.get_by_role("button", name="Approve").click()
    expect(erin.locator("#status")).to_contain_text("active")
    # Dana's page, untouched since, turns active on its own.
    expect(dana.locator("#status")).to_contain_text("active", timeout=30_000)
    expect(dana.locator("#status")).to_contain_text("erin")
    dana.screenshot(path=shots / "3-active.png", full_page=True)
    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "shared/a") == ALLOWED
    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "private/a") != ALLOWED

    dana.get_by_label("Last at least").fill("4h")
    dana.get_by_label("Reason for extending").fill("the report runs late")
    dana.get_by_role("button", name="Extend").click()
    expect(dana.locator("#status")).to_contain_text("active")

    dana.get_by_label("Reason for revoking").fill("done")
    dana.get_by_role("button", name="Revoke").click()
    expect(dana.locator("#status")).to_contain_text("revoked", timeout=30_000)
    dana.screenshot(path=shots / "4-revoked.png", full_page=True)
    assert emulator.try_as_instance(instance_id, "PutObject", bucket, "shared/a") == NO_CREDENTIALS
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-field-error.png",
        "2-preview.png",
        "3-active.png",
        "4-revoked.png",
    ]


AXE = Path(__file__).parent / "assets" / "axe-core-4.14.1.min.js"
# WCAG 2.1 A and AA: what a screen reader and the keyboard need.
AXE_RUN = """async () => {
    const result = await axe.run(document, {runOnly: {type: 'tag', values:
        ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
    return result.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target).join(', '));
}"""


@pytest.mark.parametrize("width", [1280, 360])
def test_every_page_meets_wcag_aa_and_fits_the_window(
    site: Site, instance_id: str, buckets: tuple[str, str], width: int
) -> None:
    # axe is injected as a script of the test's own: bypassing the page's CSP for it alone.
    context = site.browser.new_context(bypass_csp=True, viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(f"{site.url}/dev/login")
    page.get_by_label(REQUESTER).check()
    page.get_by_role("button", name="Continue").click()
    page.goto(f"{site.url}/request")
    page.get_by_label("Instance").fill("i-1")  # a field error shown, too
    expect(page.locator("#instance-error")).not_to_be_empty()

    for path in ("/request", "/grants", "/waiting", f"/instances/{instance_id}", "/dev/login"):
        if path != "/request":
            page.goto(f"{site.url}{path}")
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(AXE_RUN)
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert violations == [], f"{path} at {width}px: {violations}"
        assert fits, f"{path} is wider than a {width}px window"
    context.close()
