"""The web page for instances in other accounts: requested there, and shown as living there
wherever a grant is shown (to approvers before they decide, too)."""

import pytest
from starlette.testclient import TestClient

from accessbroker_web.settings import WebSettings
from broker.domain.accounts import Account, Accounts
from broker.domain.places import Place
from tests.places import HOME_REGION
from tests.unit.service.fakes import INSTANCE, FakeAws, World, world
from tests.web.conftest import APPROVER, POLICY, REQUESTER, csrf, sign_in, web_client

PROD_ID = "222222222222"
PROD = Account(
    PROD_ID, "prod", (HOME_REGION,), role_arn=f"arn:aws:iam::{PROD_ID}:role/accessbroker-spoke"
)
WHERE = f"{HOME_REGION}, account {PROD_ID}"


@pytest.fixture
def w() -> World:
    home = Account(id="", name="home", regions=(HOME_REGION,))
    elsewhere = {Place(PROD_ID, HOME_REGION): FakeAws((INSTANCE,))}
    return world(INSTANCE).with_policy(POLICY).with_accounts(Accounts(home, (PROD,)), elsewhere)


def signed_in(address: str, identity: str) -> TestClient:
    client = web_client(address, WebSettings(auth="dev", dev_identities=(REQUESTER, APPROVER)))
    sign_in(client, identity)
    return client


def request_in_prod(client: TestClient, bucket: str) -> None:
    fields = {"instance": INSTANCE, "account": "prod", "region": "", "bucket": bucket}
    fields |= {"access": "read", "prefix": "", "ttl": "", "reason": "why"}
    client.post("/request", data={**fields, "csrf_token": csrf(client)})


def test_a_grant_in_another_account_is_requested_and_shown_there(
    broker_address: str, w: World
) -> None:
    requester = signed_in(broker_address, REQUESTER)

    request_in_prod(requester, "photos")
    [granted] = w.db.grants()
    page = requester.get(f"/grants/{granted.grant_id}")
    instance = requester.get(f"/instances/{INSTANCE}?account={PROD_ID}&region={HOME_REGION}")

    assert granted.place == Place(PROD_ID, HOME_REGION)
    assert page.status_code == 200 and f"<dd>{WHERE}</dd>" in page.text
    # The instance's whole policy, read where the instance lives (at home it has none).
    assert '"s3:GetObject"' in page.text
    assert f"/instances/{INSTANCE}?account={PROD_ID}&amp;region={HOME_REGION}" in page.text
    assert instance.status_code == 200 and f"<dd>{WHERE}</dd>" in instance.text
    assert f"<td>{WHERE}</td>" in requester.get("/grants").text


def test_approvers_see_which_account_a_request_is_for(broker_address: str, w: World) -> None:
    requester, approver = signed_in(broker_address, REQUESTER), signed_in(broker_address, APPROVER)

    request_in_prod(requester, "vault")

    assert f"For {INSTANCE} ({WHERE})." in approver.get("/waiting").text
