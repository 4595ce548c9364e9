"""The Content resource's publishing fields (contract "Publishing"): they round-trip, null
clears them, ``media`` is read-only, and every bad input is a 400 envelope naming the field."""

from __future__ import annotations

import pytest

from integration_service.extensions import db
from integration_service.models import Content

URL = "/api/v1/writer/content/"

FULL = {
    "excerpt": "A short summary.",
    "slug": "hello-world",
    "publish_at": "2027-01-02T09:30:00+01:00",
    "author": "editor",
    "format": "aside",
    "sticky": True,
    "comment_status": "closed",
    "featured_image": {"url": "https://cdn.example.com/cover.jpg", "alt": "A cover", "caption": "C", "title": "T"},
    "seo": {
        "title": "SEO title",
        "description": "SEO description",
        "focus_keyword": "hello",
        "canonical_url": "https://example.com/hello",
        "noindex": False,
    },
}


def test_fields_round_trip_and_null_clears(editor_client, site):
    created = editor_client.post(URL, json={"site_id": site.id, "title": "Hello", **FULL})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    for name, value in FULL.items():
        if name != "publish_at":
            assert body[name] == value, name
    # Stored and shown in UTC (every date in every response is).
    assert body["publish_at"] == "2027-01-02T08:30:00+00:00"
    assert body["media"] is None
    stored = db.session.get(Content, body["id"])
    assert stored.publish_at.isoformat() == "2027-01-02T08:30:00+00:00" and stored.author == "editor"

    cleared = editor_client.patch(f"{URL}{body['id']}/", json=dict.fromkeys(FULL))
    assert cleared.status_code == 200, cleared.get_json()
    assert all(cleared.get_json()[name] is None for name in FULL)
    db.session.expire_all()
    stored = db.session.get(Content, body["id"])
    assert stored.featured_image is None and stored.seo is None and stored.publish_at is None


def test_author_id_is_an_integer_and_a_login_a_string(editor_client, site):
    by_id = editor_client.post(URL, json={"site_id": site.id, "title": "x", "author": 3}).get_json()
    assert by_id["author"] == 3
    by_digits = editor_client.post(URL, json={"site_id": site.id, "title": "x", "author": "7"}).get_json()
    assert by_digits["author"] == 7
    by_login = editor_client.post(URL, json={"site_id": site.id, "title": "x", "author": "jane"}).get_json()
    assert by_login["author"] == "jane"


def test_publish_at_is_kept_to_the_second(editor_client, site):
    body = editor_client.post(
        URL, json={"site_id": site.id, "title": "x", "publish_at": "2027-01-02T09:30:00.987654Z"}
    ).get_json()
    assert body["publish_at"] == "2027-01-02T09:30:00+00:00"


def test_media_is_read_only(editor_client, factory, site):
    content = factory.content(site, media=[{"source_url": "https://a.example/x.png", "status": "uploaded"}])
    # A client sending the read-only field back (as it got it) is not an error; it is ignored.
    response = editor_client.patch(f"{URL}{content.id}/", json={"media": [], "title": "New"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["media"] == [{"source_url": "https://a.example/x.png", "status": "uploaded"}]


def test_featured_image_patch_needs_the_url(editor_client, factory, site):
    content = factory.content(site)
    response = editor_client.patch(f"{URL}{content.id}/", json={"featured_image": {"alt": "no url"}})
    assert response.status_code == 400
    assert response.get_json()["error"]["details"] == {"featured_image": {"url": ["Missing data for required field."]}}


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("publish_at", "2027-01-02T09:30:00", ["publish_at"]),  # naive
        ("publish_at", "2027-01-02", ["publish_at"]),
        ("publish_at", "next tuesday", ["publish_at"]),
        ("publish_at", 1767225600, ["publish_at"]),
        ("featured_image", {"url": "/uploads/cover.jpg"}, ["featured_image", "url"]),
        ("featured_image", {"url": "ftp://cdn.example.com/cover.jpg"}, ["featured_image", "url"]),
        ("featured_image", {"url": "data:image/png;base64,AAAA"}, ["featured_image", "url"]),
        ("featured_image", {"url": "https://user:pw@cdn.example.com/a.jpg"}, ["featured_image", "url"]),
        ("featured_image", {"url": "https://cdn.example.com/a.jpg", "width": 3}, ["featured_image", "width"]),
        ("featured_image", {"url": "https://cdn.example.com/a.jpg", "alt": "x" * 1001}, ["featured_image", "alt"]),
        ("featured_image", "https://cdn.example.com/a.jpg", ["featured_image"]),
        ("format", "weird", ["format"]),
        ("format", "", ["format"]),
        ("comment_status", "maybe", ["comment_status"]),
        ("sticky", "sometimes", ["sticky"]),
        ("excerpt", "x" * 5001, ["excerpt"]),
        ("slug", "x" * 201, ["slug"]),
        ("slug", "a/b", ["slug"]),
        ("slug", "a b", ["slug"]),
        ("slug", "tab\there", ["slug"]),
        ("slug", "", ["slug"]),
        ("author", True, ["author"]),
        ("author", 0, ["author"]),
        ("author", -4, ["author"]),
        ("author", "x" * 61, ["author"]),
        ("author", "", ["author"]),
        ("author", ["admin"], ["author"]),
        ("seo", {"title": "x" * 301}, ["seo", "title"]),
        ("seo", {"description": "x" * 1001}, ["seo", "description"]),
        ("seo", {"canonical_url": "not a url"}, ["seo", "canonical_url"]),
        ("seo", {"noindex": "perhaps"}, ["seo", "noindex"]),
        ("seo", {"robots": "noindex"}, ["seo", "robots"]),
        ("seo", ["title"], ["seo"]),
        ("excerpt", "nul\x00byte", ["excerpt"]),
    ],
)
def test_bad_publishing_fields_are_400_naming_the_field(editor_client, factory, site, field, value, where):
    for response in (
        editor_client.post(URL, json={"site_id": site.id, "title": "x", field: value}),
        editor_client.patch(f"{URL}{factory.content(site).id}/", json={field: value}),
    ):
        assert response.status_code == 400, response.get_json()
        error = response.get_json()["error"]
        assert error["code"] == "validation_error"
        details = error["details"]
        for key in where:
            assert key in details, (where, error)
            details = details[key]
