"""The OpenAPI document is valid, generated from the schemas that validate, and lists every
route the app serves under /api/v1; the docs page is served."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

DOC_URL = "/api/v1/openapi.json"
# The docs page and its Swagger UI files (integration_service/api/docs.py) are not API operations.
DOCS_ENDPOINTS = {"api-docs.openapi_json", "api-docs.openapi_swagger_ui", "swagger_ui_assets.static"}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def flask_rule_to_openapi(rule: str) -> str:
    # /things/<int:thing_id>/ -> /things/{thing_id}/
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@pytest.fixture
def document(client) -> dict:
    response = client.get(DOC_URL)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def operations_in(document: dict) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }


def served_operations(app, prefix: str = "") -> set[tuple[str, str]]:
    return {
        (flask_rule_to_openapi(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(prefix) and rule.endpoint not in DOCS_ENDPOINTS and rule.endpoint != "static"
        for method in rule.methods - IGNORED_METHODS
    }


def test_document_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Integration Service"
    validate(document)  # raises OpenAPIValidationError when invalid


def test_document_lists_every_api_route_and_nothing_else(app, document):
    documented = {(path, method) for path, method in operations_in(document) if path.startswith("/api/v1")}
    served = served_operations(app, "/api/v1")
    assert served, "no routes under /api/v1?"
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_document_lists_the_probes(app, document):
    assert {("/healthz", "GET"), ("/readyz", "GET")} <= operations_in(document)
    assert served_operations(app) <= operations_in(document)


def test_contract_routes_are_documented(document):
    operations = operations_in(document)
    for expected in [
        ("/api/v1/auth/token/", "POST"),
        ("/api/v1/integration/integrations/", "GET"),
        ("/api/v1/integration/integrations/", "POST"),
        ("/api/v1/integration/integrations/{integration_id}/", "GET"),
        ("/api/v1/integration/integrations/{integration_id}/", "PUT"),
        ("/api/v1/integration/integrations/{integration_id}/", "PATCH"),
        ("/api/v1/integration/integrations/{integration_id}/", "DELETE"),
    ]:
        assert expected in operations


def test_document_comes_from_the_validating_schemas(document):
    schemas = document["components"]["schemas"]
    integration = schemas["Integration"]["properties"]
    assert integration["credentials_json"]["writeOnly"] is True
    assert integration["id"]["readOnly"] is True and integration["sync_status"]["readOnly"] is True
    assert integration["api_key"]["type"] == "string"
    assert set(integration["platform"]["enum"]) == {"wordpress", "shopify", "custom"}
    assert set(schemas["Integration"]["required"]) == {"site_id", "platform"}
    assert schemas["Integration"]["additionalProperties"] is False  # unknown fields are 400
    assert set(schemas["TokenRequest"]["required"]) == {"email", "password"}
    assert set(schemas["ApiError"]["properties"]) == {"error", "request_id"}
    page = schemas["IntegrationPage"]["properties"]
    assert set(page) == {"count", "next", "previous", "results"}


def test_operations_document_auth_and_errors(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    create = document["paths"]["/api/v1/integration/integrations/"]["post"]
    assert {"bearerAuth": []} in create["security"] and {"apiKey": []} in create["security"]
    assert create["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApiError")
    listing = document["paths"]["/api/v1/integration/integrations/"]["get"]
    query = {parameter["name"]: parameter for parameter in listing["parameters"] if parameter["in"] == "query"}
    assert {"page", "page_size", "site_id", "platform", "is_active"} <= set(query)
    assert query["page_size"]["schema"]["maximum"] == 100


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/docs/"])
def test_docs_page_is_served_as_html(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<html" in page.lower() and DOC_URL in page


def test_document_and_docs_need_no_authentication(client):
    headers = {"Authorization": "Bearer not.a.token"}  # a bad token is ignored on public routes
    assert client.get(DOC_URL, headers=headers).status_code == 200
    assert client.get("/api/v1/docs", headers=headers).status_code == 200
