"""Settings read as they are written: BROKER_DEFAULT_TTL and BROKER_MAX_TTL as durations like
brokerctl's --ttl, the audit verification interval as positive seconds, webhooks as http(s)
URLs with a secret to sign with."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from broker.settings import Settings, webhook_urls


def test_ttls_are_unset_by_default_and_read_as_durations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (Settings().default_ttl, Settings().max_ttl) == (None, None)

    monkeypatch.setenv("BROKER_DEFAULT_TTL", "8h")
    monkeypatch.setenv("BROKER_MAX_TTL", "1d12h")

    settings = Settings()
    assert (settings.default_ttl, settings.max_ttl) == (timedelta(hours=8), timedelta(hours=36))


@pytest.mark.parametrize(
    ("variables", "complaint"),
    [
        ({"BROKER_MAX_TTL": "3600"}, "invalid duration '3600'"),
        ({"BROKER_DEFAULT_TTL": "0s"}, "must be longer than zero"),
        ({"BROKER_MAX_TTL": "40000w"}, "must be at most 36525 days"),
        ({"BROKER_DEFAULT_TTL": "9h", "BROKER_MAX_TTL": "8h"}, "not be longer than BROKER_MAX"),
    ],
)
def test_bad_ttls_are_refused_saying_why(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], complaint: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=complaint):
        Settings()


def test_the_audit_chain_is_verified_hourly_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().audit_verify_interval_seconds == 3600

    monkeypatch.setenv("BROKER_AUDIT_VERIFY_INTERVAL_SECONDS", "900")

    assert Settings().audit_verify_interval_seconds == 900


@pytest.mark.parametrize("value", ["0", "-60", "hourly"])
def test_a_verification_interval_that_is_not_a_positive_number_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("BROKER_AUDIT_VERIFY_INTERVAL_SECONDS", value)

    with pytest.raises(ValidationError, match="audit_verify_interval_seconds"):
        Settings()


def test_webhooks_need_a_secret_to_sign_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_WEBHOOK_URL", "https://hooks.example.com/a, http://10.0.0.7:8080/b")

    with pytest.raises(ValidationError, match="BROKER_WEBHOOK_SECRET must be set"):
        Settings()
    monkeypatch.setenv("BROKER_WEBHOOK_SECRET", "s3cret")
    assert webhook_urls(Settings().webhook_url) == [
        "https://hooks.example.com/a",
        "http://10.0.0.7:8080/b",
    ]


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/a", "hooks.example.com/a", "http://"])
def test_a_webhook_that_is_not_an_http_url_is_refused(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("BROKER_WEBHOOK_URL", url)
    monkeypatch.setenv("BROKER_WEBHOOK_SECRET", "s3cret")

    with pytest.raises(ValidationError, match="is not an http:// or https:// URL"):
        Settings()
