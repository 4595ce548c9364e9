"""Integration CRUD: ``/api/v1/integration/integrations/`` (happy paths, validation, conflicts,
tenancy, roles and the secrecy of credentials)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import text

from integration_service.crypto import mask_secret
from integration_service.extensions import db
from integration_service.models import SiteIntegration
from integration_service.services.integrations import IntegrationService

URL = "/api/v1/integration/integrations/"
WP_KEY = "wp-plugin-key-0123456789abcdef"
RESOURCE_FIELDS = {
    "id",
    "site_id",
    "platform",
    "platform_type",
    "config_json",
    "api_key",
    "is_active",
    "sync_enabled",
    "sync_status",
    "last_sync_at",
    "sync_error",
    "sync_interval_minutes",
    "next_sync_at",
    "paused_reason",
    "created_at",
    "updated_at",
}


def item_url(integration_id: int, slash: bool = True) -> str:
    return f"{URL}{integration_id}" + ("/" if slash else "")


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert body["request_id"] and body["request_id"] == response.headers["X-Request-ID"]
    return body["error"]


def wordpress_body(site, **extra: Any) -> dict[str, Any]:
    return {"site_id": site.id, "platform": "wordpress", "api_key": WP_KEY, **extra}


# --- happy paths -----------------------------------------------------------------------------


def test_create_answers_201_with_the_resource(editor_client, site):
    response = editor_client.post(URL, json=wordpress_body(site))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == RESOURCE_FIELDS
    assert body["site_id"] == site.id
    assert body["platform"] == "wordpress"
    assert body["platform_type"] == "cms"
    assert body["config_json"] == {"site_url": site.url}  # defaults to the site's URL
    assert body["api_key"] == mask_secret(WP_KEY)
    assert body["is_active"] is True and body["sync_enabled"] is True
    assert body["sync_status"] == "idle"
    assert body["last_sync_at"] is None and body["sync_error"] is None
    stored = db.session.get(SiteIntegration, body["id"])
    assert stored.credentials_json == {"api_key": WP_KEY}


def test_create_takes_the_api_key_from_credentials_json(editor_client, site):
    response = editor_client.post(
        URL,
        json={
            "site_id": site.id,
            "platform": "wordpress",
            "platform_type": "cms",
            "config_json": {"site_url": "https://other.example.com/blog", "post_types": ["post"]},
            "credentials_json": {"api_key": WP_KEY, "username": "admin"},
            "is_active": False,
            "sync_enabled": False,
        },
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["config_json"] == {"site_url": "https://other.example.com/blog", "post_types": ["post"]}
    assert body["is_active"] is False and body["sync_enabled"] is False
    assert body["api_key"] == mask_secret(WP_KEY)
    stored = db.session.get(SiteIntegration, body["id"])
    assert stored.credentials_json == {"api_key": WP_KEY, "username": "admin"}


@pytest.mark.parametrize(("platform", "platform_type"), [("shopify", "ecommerce"), ("custom", "custom_api")])
def test_other_platforms_need_no_api_key(editor_client, site, platform, platform_type):
    response = editor_client.post(URL, json={"site_id": site.id, "platform": platform})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["platform_type"] == platform_type
    assert response.get_json()["api_key"] is None


def test_retrieve(editor_client, factory, site):
    integration = factory.integration(site)
    response = editor_client.get(item_url(integration.id))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == RESOURCE_FIELDS
    assert body["id"] == integration.id and body["site_id"] == site.id


def test_put_replaces_config_and_credentials(editor_client, factory, site):
    integration = factory.integration(site, config_json={"site_url": site.url, "extra": 1})
    new_key = "a-brand-new-plugin-key-987654321"
    response = editor_client.put(
        item_url(integration.id),
        json={
            "site_id": site.id,
            "platform": "wordpress",
            "config_json": {"site_url": "https://moved.example.com"},
            "credentials_json": {"api_key": new_key},
            "is_active": False,
        },
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["config_json"] == {"site_url": "https://moved.example.com"}
    assert body["api_key"] == mask_secret(new_key)
    assert body["is_active"] is False
    db.session.expire_all()
    assert db.session.get(SiteIntegration, integration.id).credentials_json == {"api_key": new_key}


def test_put_keeps_the_site_url_when_the_new_config_has_none(editor_client, factory, site):
    integration = factory.integration(site)
    response = editor_client.put(
        item_url(integration.id), json={"site_id": site.id, "platform": "wordpress", "config_json": {"a": 1}}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["config_json"] == {"a": 1, "site_url": site.url}


def test_put_needs_the_required_fields(editor_client, factory, site):
    integration = factory.integration(site)
    error = assert_error(
        editor_client.put(item_url(integration.id), json={"is_active": False}), 400, "validation_error"
    )
    assert set(error["details"]) == {"site_id", "platform"}


def test_put_with_empty_wordpress_credentials_is_400(editor_client, factory, site):
    integration = factory.integration(site)
    response = editor_client.put(
        item_url(integration.id), json={"site_id": site.id, "platform": "wordpress", "credentials_json": {}}
    )
    error = assert_error(response, 400, "validation_error")
    assert "api_key" in error["details"]


def test_patch_changes_only_the_given_fields(editor_client, factory, site):
    integration = factory.integration(site, config_json={"site_url": site.url, "keep": True})
    response = editor_client.patch(item_url(integration.id), json={"sync_enabled": False})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["sync_enabled"] is False and body["is_active"] is True
    assert body["config_json"] == {"site_url": site.url, "keep": True}
    assert body["api_key"] == mask_secret(site.plain_api_key)


def test_patch_merges_credentials(editor_client, factory, site):
    integration = factory.integration(site, credentials_json={"api_key": WP_KEY, "username": "admin"})
    response = editor_client.patch(item_url(integration.id), json={"credentials_json": {"username": "editor"}})
    assert response.status_code == 200, response.get_json()
    db.session.expire_all()
    assert db.session.get(SiteIntegration, integration.id).credentials_json == {"api_key": WP_KEY, "username": "editor"}


def test_patch_with_top_level_api_key_replaces_the_key(editor_client, factory, site):
    integration = factory.integration(site)
    new_key = "patched-plugin-key-0123456789"
    response = editor_client.patch(item_url(integration.id), json={"api_key": new_key})
    assert response.status_code == 200
    assert response.get_json()["api_key"] == mask_secret(new_key)


def test_delete_answers_204_and_removes_it(editor_client, factory, site):
    integration = factory.integration(site)
    response = editor_client.delete(item_url(integration.id))
    assert response.status_code == 204
    assert response.get_data() == b""
    assert db.session.get(SiteIntegration, integration.id) is None
    assert_error(editor_client.get(item_url(integration.id)), 404, "not_found")
    assert_error(editor_client.delete(item_url(integration.id)), 404, "not_found")


def test_trailing_slash_is_optional_and_never_redirects(editor_client, site):
    created = editor_client.post(URL.rstrip("/"), json=wordpress_body(site))
    assert created.status_code == 201, created.get_json()
    integration_id = created.get_json()["id"]
    listed = editor_client.get(URL.rstrip("/"))
    assert listed.status_code == 200 and listed.get_json()["count"] == 1
    for slash in (True, False):
        assert editor_client.get(item_url(integration_id, slash)).status_code == 200
        assert editor_client.patch(item_url(integration_id, slash), json={"is_active": True}).status_code == 200
    assert editor_client.delete(item_url(integration_id, slash=False)).status_code == 204


# --- list, pagination, filters -------------------------------------------------------------


@pytest.fixture
def fifteen_integrations(factory, account):
    """5 sites x 3 platforms; the shopify ones are inactive."""
    sites = [factory.site(account) for _ in range(5)]
    for site in sites:
        factory.integration(site, "wordpress")
        factory.integration(site, "shopify", is_active=False)
        factory.integration(site, "custom")
    return sites


def test_list_is_paginated_drf_style(editor_client, fifteen_integrations):
    first = editor_client.get(URL, query_string={"page_size": 10})
    assert first.status_code == 200
    body = first.get_json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 15
    assert len(body["results"]) == 10
    assert body["previous"] is None
    assert "page=2" in body["next"] and "page_size=10" in body["next"]
    ids = [item["id"] for item in body["results"]]
    assert ids == sorted(ids)

    second = editor_client.get(body["next"].replace("http://localhost", ""))
    page_two = second.get_json()
    assert page_two["count"] == 15 and len(page_two["results"]) == 5
    assert page_two["next"] is None
    assert "page=1" in page_two["previous"]
    assert not set(ids) & {item["id"] for item in page_two["results"]}


def test_list_default_page_size_and_maximum(editor_client, fifteen_integrations):
    assert len(editor_client.get(URL).get_json()["results"]) == 15  # default page size 20
    assert len(editor_client.get(URL, query_string={"page_size": 100}).get_json()["results"]) == 15
    assert editor_client.get(URL, query_string={"page": 9}).get_json()["results"] == []


def test_list_filters(editor_client, fifteen_integrations):
    site = fifteen_integrations[2]
    by_site = editor_client.get(URL, query_string={"site_id": site.id}).get_json()
    assert by_site["count"] == 3 and {item["site_id"] for item in by_site["results"]} == {site.id}

    by_platform = editor_client.get(URL, query_string={"platform": "custom"}).get_json()
    assert by_platform["count"] == 5 and {item["platform"] for item in by_platform["results"]} == {"custom"}

    inactive = editor_client.get(URL, query_string={"is_active": "false"}).get_json()
    assert inactive["count"] == 5 and {item["platform"] for item in inactive["results"]} == {"shopify"}
    assert editor_client.get(URL, query_string={"is_active": "true"}).get_json()["count"] == 10

    combined = editor_client.get(URL, query_string={"site_id": site.id, "platform": "wordpress"}).get_json()
    assert combined["count"] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page": 0}, "page"),
        ({"page": "abc"}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"site_id": "abc"}, "site_id"),
        ({"platform": "joomla"}, "platform"),
        ({"is_active": "maybe"}, "is_active"),
    ],
)
def test_bad_list_queries_are_400(editor_client, query, field):
    error = assert_error(editor_client.get(URL, query_string=query), 400, "validation_error")
    assert field in error["details"]


# --- validation --------------------------------------------------------------------------------


def test_missing_fields(editor_client):
    error = assert_error(editor_client.post(URL, json={}), 400, "validation_error")
    assert error["details"]["site_id"] == ["Missing data for required field."]
    assert error["details"]["platform"] == ["Missing data for required field."]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"site_id": "1"}, "site_id"),
        ({"site_id": 1.5}, "site_id"),
        ({"site_id": 0}, "site_id"),
        ({"platform": 5}, "platform"),
        ({"platform": "joomla"}, "platform"),
        ({"is_active": "maybe"}, "is_active"),
        ({"sync_enabled": [True]}, "sync_enabled"),
        ({"config_json": "site_url=https://x.example"}, "config_json"),
        ({"config_json": ["a"]}, "config_json"),
        ({"credentials_json": ["a"]}, "credentials_json"),
        ({"credentials_json": {"api_key": 12345678}}, "credentials_json"),
        ({"api_key": 12345678}, "api_key"),
        ({"api_key": "short"}, "api_key"),
        ({"api_key": "igk_…abcd"}, "api_key"),  # a masked key sent back is not a key
    ],
)
def test_wrong_types_and_values_are_400(editor_client, site, extra, field):
    error = assert_error(editor_client.post(URL, json=wordpress_body(site, **extra)), 400, "validation_error")
    assert field in error["details"]


def test_platform_type_must_match_the_platform(editor_client, site):
    response = editor_client.post(URL, json=wordpress_body(site, platform_type="ecommerce"))
    error = assert_error(response, 400, "validation_error")
    assert error["details"] == {"platform_type": ["The platform wordpress has the type cms."]}
    assert_error(editor_client.post(URL, json=wordpress_body(site, platform_type="erp")), 400, "validation_error")


@pytest.mark.parametrize(
    "site_url",
    [
        "/wp-json/",
        "example.com",
        "ftp://example.com",
        "javascript:alert(1)",
        "https://",
        "https://admin:secret@example.com",
        "https://admin@example.com",
        12345,
        "https://example.com/" + "a" * 2100,
    ],
)
def test_bad_site_url_in_config_json_is_400(editor_client, site, site_url):
    response = editor_client.post(URL, json=wordpress_body(site, config_json={"site_url": site_url}))
    error = assert_error(response, 400, "validation_error")
    assert "site_url" in error["details"]["config_json"]


def test_site_url_with_credentials_says_why(editor_client, site):
    body = wordpress_body(site, config_json={"site_url": "https://admin:secret@example.com"})
    error = assert_error(editor_client.post(URL, json=body), 400, "validation_error")
    assert error["details"] == {"config_json": {"site_url": ["The URL must not contain credentials."]}}


@pytest.mark.parametrize("site_url", ["http://127.0.0.1:8881", "https://example.com/blog/", "HTTPS://Example.com"])
def test_good_site_urls_are_accepted(editor_client, site, site_url):
    response = editor_client.post(URL, json=wordpress_body(site, config_json={"site_url": site_url}))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["config_json"]["site_url"] == site_url


@pytest.mark.parametrize(
    "body_extra",
    [{}, {"credentials_json": {}}, {"credentials_json": {"username": "admin"}}, {"api_key": ""}],
)
def test_wordpress_without_api_key_is_400(editor_client, site, body_extra):
    body = {"site_id": site.id, "platform": "wordpress", **body_extra}
    error = assert_error(editor_client.post(URL, json=body), 400, "validation_error")
    assert "api_key" in error["details"]
    assert db.session.scalar(db.select(db.func.count()).select_from(SiteIntegration)) == 0


def test_unknown_fields_are_400(editor_client, site):
    error = assert_error(editor_client.post(URL, json=wordpress_body(site, colour="blue")), 400, "validation_error")
    assert error["details"] == {"colour": ["Unknown field."]}


def test_read_only_fields_are_ignored(editor_client, site):
    response = editor_client.post(
        URL,
        json=wordpress_body(
            site,
            id=999,
            sync_status="failed",
            sync_error="boom",
            last_sync_at="2020-01-01T00:00:00Z",
            created_at="2020-01-01T00:00:00Z",
            updated_at="not even a date",
        ),
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["id"] != 999
    assert body["sync_status"] == "idle" and body["sync_error"] is None and body["last_sync_at"] is None
    assert not body["created_at"].startswith("2020")


def test_body_that_is_not_an_object_is_400(editor_client):
    for payload in ([1, 2], "text", 42):
        assert_error(editor_client.post(URL, json=payload), 400, "validation_error")


def test_site_of_another_tenant_is_404(editor_client, factory):
    foreign_site = factory.site(factory.account())
    assert_error(editor_client.post(URL, json=wordpress_body(foreign_site)), 404, "not_found")
    unknown = {"site_id": 99999, "platform": "wordpress", "api_key": WP_KEY}
    assert_error(editor_client.post(URL, json=unknown), 404, "not_found")
    assert db.session.scalar(db.select(db.func.count()).select_from(SiteIntegration)) == 0


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"site_id": 424242}, "site_id"),
        ({"platform": "shopify"}, "platform"),
        ({"platform_type": "ecommerce"}, "platform_type"),
        ({"config_json": {"site_url": "ftp://example.com"}}, "config_json"),
        ({"is_active": "nope"}, "is_active"),
        ({"sync_status": "syncing", "bogus": 1}, "bogus"),
    ],
)
def test_bad_patches_are_400(editor_client, factory, site, patch, field):
    integration = factory.integration(site)
    error = assert_error(editor_client.patch(item_url(integration.id), json=patch), 400, "validation_error")
    assert field in error["details"]
    db.session.expire_all()
    assert db.session.get(SiteIntegration, integration.id).platform == "wordpress"


def test_patch_with_unchanged_site_and_platform_is_fine(editor_client, factory, site):
    integration = factory.integration(site)
    response = editor_client.patch(
        item_url(integration.id), json={"site_id": site.id, "platform": "wordpress", "platform_type": "cms"}
    )
    assert response.status_code == 200, response.get_json()


# --- conflicts ---------------------------------------------------------------------------------


def test_duplicate_site_and_platform_is_409(editor_client, site):
    assert editor_client.post(URL, json=wordpress_body(site)).status_code == 201
    error = assert_error(editor_client.post(URL, json=wordpress_body(site)), 409, "conflict")
    assert error["details"] == {"site_id": site.id, "platform": "wordpress"}
    # Another platform on the same site is fine.
    assert editor_client.post(URL, json={"site_id": site.id, "platform": "custom"}).status_code == 201


def test_two_concurrent_creates_give_one_201_and_one_409(app, factory, editor, site, monkeypatch):
    """Both requests pass every check before either commits; the unique constraint decides."""
    token = factory.token(editor)
    body = wordpress_body(site)  # read in this thread: the ORM objects belong to this app context
    barrier = threading.Barrier(2, timeout=10)
    original_commit = IntegrationService._commit_unique

    def commit_together(self, site_id, platform):
        barrier.wait()  # both requests have added their row and now commit at once
        return original_commit(self, site_id, platform)

    monkeypatch.setattr(IntegrationService, "_commit_unique", commit_together)
    results: list[tuple[int, dict]] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            # Each thread has its own client, so each request pushes its own app context and
            # database session.
            response = app.test_client().post(URL, json=body, headers={"Authorization": f"Bearer {token}"})
            results.append((response.status_code, response.get_json()))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert sorted(status for status, _ in results) == [201, 409], results
    conflict = next(body for status, body in results if status == 409)
    assert conflict["error"]["code"] == "conflict"
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(SiteIntegration)) == 1


# --- tenancy -------------------------------------------------------------------------------------


@pytest.fixture
def foreign_integration(factory):
    other_account = factory.account()
    return factory.integration(factory.site(other_account))


def test_other_tenants_integrations_are_404_for_every_method(editor_client, foreign_integration):
    url = item_url(foreign_integration.id)
    assert_error(editor_client.get(url), 404, "not_found")
    put_body = {"site_id": foreign_integration.site_id, "platform": "wordpress", "is_active": False}
    assert_error(editor_client.put(url, json=put_body), 404, "not_found")
    assert_error(editor_client.patch(url, json={"is_active": False}), 404, "not_found")
    assert_error(editor_client.delete(url), 404, "not_found")
    db.session.expire_all()
    survivor = db.session.get(SiteIntegration, foreign_integration.id)
    assert survivor is not None and survivor.is_active is True


def test_other_tenants_integrations_never_appear_in_the_list(editor_client, factory, site, foreign_integration):
    own = factory.integration(site)
    listed = editor_client.get(URL).get_json()
    assert [item["id"] for item in listed["results"]] == [own.id]
    assert listed["count"] == 1
    filtered = editor_client.get(URL, query_string={"site_id": foreign_integration.site_id}).get_json()
    assert filtered == {"count": 0, "next": None, "previous": None, "results": []}


def test_site_api_key_sees_only_its_own_site(api_client_for, factory, account):
    site_a, site_b = factory.site(account), factory.site(account)
    own = factory.integration(site_a)
    sibling = factory.integration(site_b)
    key_client = api_client_for(api_key=site_a.plain_api_key)

    listed = key_client.get(URL).get_json()
    assert [item["id"] for item in listed["results"]] == [own.id]
    assert key_client.get(item_url(own.id)).status_code == 200
    assert_error(key_client.get(item_url(sibling.id)), 404, "not_found")
    assert_error(key_client.patch(item_url(sibling.id), json={"is_active": False}), 404, "not_found")
    assert_error(key_client.delete(item_url(sibling.id)), 404, "not_found")
    assert_error(key_client.post(URL, json={"site_id": site_b.id, "platform": "custom"}), 404, "not_found")
    # The key has editor rights on its own site.
    assert key_client.post(URL, json={"site_id": site_a.id, "platform": "custom"}).status_code == 201
    assert key_client.patch(item_url(own.id), json={"sync_enabled": False}).status_code == 200


def test_site_api_key_in_bearer_header_works_too(client, factory, site):
    integration = factory.integration(site)
    response = client.get(item_url(integration.id), headers={"Authorization": f"Bearer {site.plain_api_key}"})
    assert response.status_code == 200


# --- roles --------------------------------------------------------------------------------------


def test_viewer_can_read_but_not_write(viewer_client, factory, site):
    integration = factory.integration(site)
    assert viewer_client.get(URL).status_code == 200
    assert viewer_client.get(item_url(integration.id)).status_code == 200
    assert_error(viewer_client.post(URL, json={"site_id": site.id, "platform": "custom"}), 403, "permission_denied")
    put_body = {"site_id": site.id, "platform": "wordpress"}
    assert_error(viewer_client.put(item_url(integration.id), json=put_body), 403, "permission_denied")
    assert_error(viewer_client.patch(item_url(integration.id), json={"is_active": False}), 403, "permission_denied")
    assert_error(viewer_client.delete(item_url(integration.id)), 403, "permission_denied")
    db.session.expire_all()
    assert db.session.get(SiteIntegration, integration.id).is_active is True


def test_viewer_gets_403_before_any_validation(viewer_client):
    assert_error(viewer_client.post(URL, json={"bogus": True}), 403, "permission_denied")


@pytest.mark.parametrize("role", ["editor", "admin", "owner"])
def test_editor_and_above_can_write(api_client_for, factory, account, site, role):
    client = api_client_for(factory.user(account, role=role))
    created = client.post(URL, json={"site_id": site.id, "platform": "custom"})
    assert created.status_code == 201
    integration_id = created.get_json()["id"]
    assert client.patch(item_url(integration_id), json={"is_active": False}).status_code == 200
    assert client.delete(item_url(integration_id)).status_code == 204


def test_anonymous_is_401(client, factory, site):
    integration = factory.integration(site)
    assert_error(client.get(URL), 401, "not_authenticated")
    assert_error(client.get(item_url(integration.id)), 401, "not_authenticated")
    assert_error(client.post(URL, json={"site_id": site.id, "platform": "custom"}), 401, "not_authenticated")


# --- secrets ------------------------------------------------------------------------------------


def test_credentials_are_never_readable_in_the_database(editor_client, site):
    app_password = "abcd EFGH ijkl MNOP qrst UVWX"
    response = editor_client.post(
        URL, json=wordpress_body(site, credentials_json={"app_password": app_password, "username": "wp-admin"})
    )
    assert response.status_code == 201
    with db.engine.connect() as connection:
        raw_integrations = repr(connection.execute(text("SELECT * FROM site_integrations")).all())
        raw_sites = repr(connection.execute(text("SELECT * FROM sites")).all())
    for secret in (WP_KEY, app_password, "wp-admin", site.plain_api_key):
        assert secret not in raw_integrations
        assert secret not in raw_sites
    # Tokens, not empty strings, are stored: the credentials are there, only encrypted.
    assert "gAAAAA" in raw_integrations and "gAAAAA" in raw_sites


def test_credentials_are_never_in_a_response(editor_client, site):
    secret_password = "very-secret-app-password-42"
    created = editor_client.post(URL, json=wordpress_body(site, credentials_json={"app_password": secret_password}))
    integration_id = created.get_json()["id"]
    responses = [
        created,
        editor_client.get(URL),
        editor_client.get(item_url(integration_id)),
        editor_client.patch(item_url(integration_id), json={"credentials_json": {"app_password": secret_password}}),
        editor_client.put(
            item_url(integration_id),
            json={"site_id": site.id, "platform": "wordpress", "credentials_json": {"api_key": WP_KEY}},
        ),
        editor_client.post(URL, json=wordpress_body(site)),  # 409
        editor_client.post(URL, json=wordpress_body(site, credentials_json={"app_password": secret_password, "x": 1})),
        editor_client.patch(item_url(integration_id), json={"credentials_json": {"api_key": 5}, "api_key": "short"}),
    ]
    for response in responses:
        text_body = response.get_data(as_text=True)
        assert WP_KEY not in text_body, response.status_code
        assert secret_password not in text_body, response.status_code
        assert site.plain_api_key not in text_body
        assert "credentials_json" not in (response.get_json() or {})
    assert created.get_json()["api_key"] == mask_secret(WP_KEY)
    assert editor_client.get(item_url(integration_id)).get_json()["api_key"] == mask_secret(WP_KEY)
