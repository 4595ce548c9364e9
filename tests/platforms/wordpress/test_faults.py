"""Faults of a WordPress site (issue 12, section 6) that the other platform tests do not cover:
truncated JSON, a 5xx that stays, 429 with Retry-After, a redirect to another loopback port, and
no secret in what the service reports about any of them."""

from __future__ import annotations

import json

import pytest
import responses

from integration_service.platforms.base import PlatformError
from tests.platforms.fakes import (
    API_KEY,
    APP_PASSWORD,
    SITE,
    Sleeps,
    fake_dns_fixture,  # noqa: F401 - fixture
    make_client,
    mocked_fixture,  # noqa: F401 - fixture
)
from tests.platforms.test_http import URL, transport

pytestmark = pytest.mark.usefixtures("fake_dns")


def assert_no_secret(report) -> None:
    text = json.dumps({"message": report.message, "details": report.details}, default=str)
    for secret in (API_KEY, APP_PASSWORD):
        assert secret not in text


def test_truncated_json_is_a_failed_check_not_an_error(mocked: responses.RequestsMock) -> None:
    body = '{"name": "Example Blog", "namespaces": ["wp/v2", "igny8'
    mocked.get(f"{SITE}/wp-json/", body=body, content_type="application/json")
    mocked.get(f"{SITE}/", body=body, content_type="application/json")
    report = make_client().test_connection()
    assert not report.success
    assert report.details["stage"]
    assert_no_secret(report)


def test_a_lasting_5xx_is_a_failed_check_after_the_retries(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", status=500, body="<html>Internal Server Error</html>", content_type="text/html")
    mocked.get(f"{SITE}/", status=500, body="<html>Internal Server Error</html>", content_type="text/html")
    report = make_client().test_connection()
    assert not report.success
    assert report.details["stage"]
    assert_no_secret(report)


def test_429_is_retried_honouring_retry_after(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, status=429, headers={"Retry-After": "4"})
    mocked.get(URL, json={"ok": True})
    sleeps = Sleeps()
    response = transport(sleeps).request("GET", URL)
    assert response.status_code == 200
    # The host's back-off (platforms/politeness.py) waits what remains of the 4 s when it sleeps.
    assert sleeps == pytest.approx([4.0], abs=0.5)


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:6379/", "http://localhost:8080/wp-json/", "http://[::1]:5432/", "http://127.0.0.2/"],
)
def test_redirect_to_another_loopback_port_is_refused(mocked: responses.RequestsMock, location: str) -> None:
    mocked.get(URL, status=302, headers={"Location": location})
    mocked.get(location, body="internal")
    with pytest.raises(PlatformError) as excinfo:
        transport().request("GET", URL)
    assert "not allowed" in excinfo.value.message
    assert len(mocked.calls) == 1  # the loopback hop was never requested


def test_redirect_to_the_metadata_address_is_refused_even_with_private_targets_allowed(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(URL, status=307, headers={"Location": "http://169.254.169.254/latest/meta-data/iam/"})
    with pytest.raises(PlatformError, match="not allowed"):
        transport(allow_private=True).request("GET", URL)
    assert len(mocked.calls) == 1
