"""Property-based fuzzing of the whole HTTP API from its OpenAPI document (schemathesis), run
against the app on the suite's database (PostgreSQL in CI), as a user (JWT) and as a site key:
no 5xx, every response matching its documented schema (errors: the envelope, documented as every
operation's ``default`` response), every error in the envelope.

``FUZZ_MAX_EXAMPLES`` sets the examples per operation (``tests/fuzz/budget.py``: a small default
keeps the suite fast; ``FUZZ_MAX_EXAMPLES=200 FUZZ_RANDOM=1 scripts/test.sh tests/fuzz`` goes deeper).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from integration_service.extensions import limiter
from integration_service.platforms import ssrf
from tests.fuzz.budget import MAX_EXAMPLES

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _openapi_document() -> dict:
    # Collection needs the operations before the suite's app exists: render the document from an
    # app of the same config (rendering touches no database).
    from config import TestingConfig
    from integration_service import create_app

    return create_app(TestingConfig).test_client().get("/api/v1/openapi.json").get_json()


schema = schemathesis.openapi.from_dict(_openapi_document())


@pytest.fixture
def principals(factory):
    """Headers of an editor (JWT) and of a site key, with rows their ids can name: a site whose
    WordPress URL refuses connections at once (no network), an integration and content."""
    account = factory.account()
    editor = factory.user(account, role="editor")
    site = factory.site(account, url="http://127.0.0.1:9")
    factory.integration(site)
    factory.content(site, title="fuzz")
    return [
        {"Authorization": f"Bearer {factory.token(editor)}"},
        {"X-API-Key": site.plain_api_key},
    ]


@pytest.fixture
def offline(monkeypatch):
    """Generated site URLs name arbitrary hosts and IP addresses: no lookup or connection may
    leave the machine. Every target fails to resolve (IP literals included), so each outbound
    call is a quick connection_failed."""

    def no_dns(host: str, port: int):
        raise ssrf.DnsFailure(f"The host name {host} could not be resolved.")

    monkeypatch.setattr(ssrf, "resolve_host", no_dns)


@pytest.fixture
def unlimited():
    # Hundreds of requests a minute from one principal: the rate limits are tested elsewhere.
    limiter.enabled = False
    yield
    limiter.enabled = True


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=os.environ.get("FUZZ_RANDOM") is None,  # reproducible in CI; FUZZ_RANDOM=1 explores
)
def test_api_fuzz(app, case, principals, offline, unlimited):
    for headers in principals:
        response = case.call(app=app, headers={**(case.headers or {}), **headers})
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error", "request_id"}, body
            assert set(body["error"]) == {"code", "message", "details"}, body
