"""Content API: list (paginated, filtered), create, retrieve, partial update; tenancy and roles."""

from __future__ import annotations

import pytest

from integration_service.extensions import db
from integration_service.models import Content

URL = "/api/v1/writer/content/"


def test_create_retrieve_and_patch(editor_client, site):
    created = editor_client.post(
        URL,
        json={
            "site_id": site.id,
            "title": "Hello",
            "content_html": "<p>Hi</p>",
            "status": "review",
            "taxonomies": {"tags": ["news"]},
            "metadata": {"seo_title": "Hello!"},
        },
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["content_type"] == "post" and body["source"] == "platform"
    assert body["metadata"] == {"seo_title": "Hello!"} and body["external_id"] is None
    assert set(body) >= {
        "id",
        "site_id",
        "title",
        "content_html",
        "status",
        "content_type",
        "external_id",
        "external_url",
        "external_status",
        "taxonomies",
        "metadata",
        "source",
        "last_synced_at",
        "created_at",
        "updated_at",
    }

    item = f"{URL}{body['id']}/"
    assert editor_client.get(item).get_json()["title"] == "Hello"
    patched = editor_client.patch(item, json={"status": "published", "metadata": {"seo_title": "New"}})
    assert patched.status_code == 200
    assert patched.get_json()["status"] == "published" and patched.get_json()["metadata"] == {"seo_title": "New"}
    assert patched.get_json()["title"] == "Hello"


def test_list_is_paginated_and_filtered(editor_client, factory, site, account):
    other_site = factory.site(account)
    for index in range(3):
        factory.content(site, external_id=str(index + 1), external_status="publish", source="wordpress")
    factory.content(site, content_type="page")
    factory.content(other_site)
    factory.content(factory.site())  # another account's site

    everything = editor_client.get(URL).get_json()
    assert everything["count"] == 5
    page = editor_client.get(URL, query_string={"page_size": 2, "page": 2}).get_json()
    assert len(page["results"]) == 2 and page["previous"] and page["next"]
    assert editor_client.get(URL, query_string={"site_id": site.id}).get_json()["count"] == 4
    assert editor_client.get(URL, query_string={"content_type": "page"}).get_json()["count"] == 1
    assert editor_client.get(URL, query_string={"external_status": "publish"}).get_json()["count"] == 3
    assert editor_client.get(URL, query_string={"source": "wordpress"}).get_json()["count"] == 3


@pytest.mark.parametrize(
    "query",
    [{"page": 0}, {"page_size": 101}, {"source": "elsewhere"}, {"site_id": "x"}],
)
def test_bad_list_queries_are_400(editor_client, query):
    response = editor_client.get(URL, query_string=query)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "validation_error"


SITE = "<the site's id>"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": "x"},  # a user must say which site
        {"site_id": "one", "title": "x"},
        {"site_id": SITE, "title": "x", "status": "archived"},
        {"site_id": SITE, "title": "x", "external_url": "ftp://x"},
        {"site_id": SITE, "title": "x", "content_type": "bad type!"},
        {"site_id": SITE, "title": "x", "unknown": 1},
        {"site_id": SITE, "title": "x", "taxonomies": ["not", "an", "object"]},
        {"site_id": SITE, "title": "x", "metadata": {"big": "x" * 70_000}},
        {"site_id": SITE, "title": "", "content_html": "x"},
    ],
)
def test_bad_create_bodies_are_400(editor_client, site, body):
    body = {key: (site.id if value == SITE else value) for key, value in body.items()}
    response = editor_client.post(URL, json=body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == "validation_error"


def test_duplicate_external_id_is_409(editor_client, factory, site):
    factory.content(site, external_id="7")
    response = editor_client.post(URL, json={"site_id": site.id, "title": "x", "external_id": "7"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"


def test_tenancy_other_accounts_get_404(api_client_for, editor_client, factory, site):
    stranger = api_client_for(factory.user(factory.account(), role="owner"))
    content = factory.content(site)
    assert stranger.get(f"{URL}{content.id}/").status_code == 404
    assert stranger.patch(f"{URL}{content.id}/", json={"title": "x"}).status_code == 404
    assert stranger.post(URL, json={"site_id": site.id, "title": "x"}).status_code == 404
    assert stranger.get(URL).get_json()["count"] == 0


def test_roles_viewers_read_only(viewer_client, factory, site):
    content = factory.content(site)
    assert viewer_client.get(f"{URL}{content.id}/").status_code == 200
    assert viewer_client.post(URL, json={"site_id": site.id, "title": "x"}).status_code == 403
    assert viewer_client.patch(f"{URL}{content.id}/", json={"title": "x"}).status_code == 403


def test_unauthenticated_is_401(client):
    assert client.get(URL).status_code == 401


def test_site_api_key_sees_only_its_site(api_client_for, factory, site, account):
    other = factory.content(factory.site(account))
    mine = factory.content(site)
    plugin = api_client_for(api_key=site.plain_api_key)
    assert plugin.get(URL).get_json()["count"] == 1
    assert plugin.get(f"{URL}{other.id}/").status_code == 404
    created = plugin.post(URL, json={"title": "From the plugin"})  # site_id defaults to the key's site
    assert created.status_code == 201 and created.get_json()["site_id"] == site.id
    assert plugin.patch(f"{URL}{mine.id}/", json={"title": "ok"}).status_code == 200


def test_patch_bad_inputs(editor_client, factory, site, account):
    content = factory.content(site)
    item = f"{URL}{content.id}/"
    assert editor_client.patch(item, json={"status": "gone"}).status_code == 400
    moved = editor_client.patch(item, json={"site_id": factory.site(account).id})
    assert moved.status_code == 400 and "site_id" in moved.get_json()["error"]["details"]
    assert editor_client.patch(item, json={"conflict": {"x": 1}}).status_code == 400
    assert editor_client.patch(f"{URL}999999/", json={"title": "x"}).status_code == 404


def test_patch_conflict_null_keeps_the_platform_copy(editor_client, factory, site):
    content = factory.content(
        site, external_id="3", conflict={"remote_modified_gmt": "2026-05-01T10:00:00+00:00", "reason": "both"}
    )
    response = editor_client.patch(f"{URL}{content.id}/", json={"conflict": None})
    assert response.status_code == 200 and response.get_json()["conflict"] is None
    db.session.expire_all()
    stored = db.session.get(Content, content.id)
    assert stored.conflict is None
    assert stored.external_modified_gmt.isoformat() == "2026-05-01T10:00:00+00:00"
    assert db.session.scalar(db.select(db.func.count(Content.id)).where(Content.conflict.is_not(None))) == 0
