"""End to end against the real WordPress 6.1 and the real igny8-bridge plugin, called directly over
REST (Application Password for WordPress's routes, the site API key for the plugin's): the
``igny8_seo`` field in Yoast SEO's keys, in Rank Math's, or printed in the page's ``<head>`` by the
plugin itself; the media source-hash headers and ``GET igny8/v1/media``.

"Yoast active" and "Rank Math active" are the test-only mu-plugin igny8-e2e-seo.php defining
``WPSEO_VERSION`` / ``RANK_MATH_VERSION`` (option ``igny8_e2e_seo_plugin``), which is all the
companion plugin looks at. No service process is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.e2e

TIMEOUT = 30
SEO = {
    "title": "An SEO title & more",
    "description": 'What the "article" is about.',
    "focus_keyword": "headline tips",
    "canonical_url": "https://platform.example.com/articles/headline-tips",
    "noindex": True,
}


def php(site, code: str) -> Any:
    """Run PHP in the site (as admin) and decode the JSON it echoes last."""
    from tests.support.wordpress import eval_php

    output = eval_php(site.name, code)
    try:
        return json.loads(output.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise AssertionError(f"PHP printed no JSON: {output!r}") from None


def b64(value: Any) -> str:
    """A value handed to PHP code as base64 JSON (no quoting problems)."""
    return base64.b64encode(json.dumps(value).encode()).decode()


def post_meta(site, post_id: int) -> dict[str, Any]:
    """Every meta of a post as stored (single values, unserialized), read inside WordPress."""
    return php(
        site,
        f"""
        $out = [];
        foreach (array_keys(get_post_meta({post_id})) as $key) {{ $out[$key] = get_post_meta({post_id}, $key, true); }}
        echo json_encode((object) $out);
        """,
    )


def create_post(site, **fields: Any) -> requests.Response:
    body = {"title": f"SEO e2e {secrets.token_hex(4)}", "status": "publish", "content": "<p>Body.</p>", **fields}
    return requests.post(site.rest("wp/v2/posts"), json=body, auth=site.app_password_auth, timeout=TIMEOUT)


def update_post(site, post_id: int, **fields: Any) -> requests.Response:
    return requests.post(site.rest(f"wp/v2/posts/{post_id}"), json=fields, auth=site.app_password_auth, timeout=TIMEOUT)


@pytest.fixture
def seo_plugin(wordpress_site) -> Iterator[Any]:
    """Call with 'yoast', 'rank_math' or None to make that SEO plugin 'active'; reset afterwards."""

    def activate(name: str | None) -> None:
        if name is None:
            php(wordpress_site, "delete_option('igny8_e2e_seo_plugin'); echo json_encode(true);")
        else:
            php(wordpress_site, f"update_option('igny8_e2e_seo_plugin', '{name}'); echo json_encode(true);")

    activate(None)
    yield activate
    activate(None)


@pytest.fixture
def api_key(wordpress_site) -> Iterator[str]:
    """A site API key stored in the plugin (the previous value is put back afterwards)."""
    key = secrets.token_urlsafe(24)
    previous = php(
        wordpress_site,
        f"$old = get_option(IGNY8_BRIDGE_OPT_API_KEY, ''); update_option(IGNY8_BRIDGE_OPT_API_KEY, '{key}');"
        " echo json_encode($old);",
    )
    yield key
    php(
        wordpress_site,
        f"update_option(IGNY8_BRIDGE_OPT_API_KEY, json_decode(base64_decode('{b64(previous)}')));"
        " echo json_encode(true);",
    )


class HeadTags(HTMLParser):
    """The SEO-relevant tags of a page's <head>: titles, meta descriptions, canonicals, robots."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: list[str] = []
        self.descriptions: list[str] = []
        self.canonicals: list[str] = []
        self.robots: list[str] = []
        self._in_head = False
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "head":
            self._in_head = True
        elif not self._in_head:
            return
        elif tag == "title":
            self._in_title = True
            self.titles.append("")
        elif tag == "meta" and values.get("name", "").lower() == "description":
            self.descriptions.append(values.get("content", ""))
        elif tag == "meta" and values.get("name", "").lower() == "robots":
            self.robots.append(values.get("content", ""))
        elif tag == "link" and "canonical" in values.get("rel", "").lower().split():
            self.canonicals.append(values.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.titles[-1] += data


def head_of(url: str) -> HeadTags:
    """The page fetched as a visitor (no credentials, no cookies)."""
    response = requests.get(url, timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:500]
    parser = HeadTags()
    parser.feed(response.text)
    return parser


# -- SEO ------------------------------------------------------------------------------------------


def test_igny8_seo_lands_in_the_yoast_keys_when_yoast_is_active(wordpress_site, seo_plugin):
    seo_plugin("yoast")

    created = create_post(wordpress_site, igny8_seo=SEO)

    assert created.status_code == 201, created.text
    post = created.json()
    assert post["igny8_seo"] == SEO
    stored = post_meta(wordpress_site, post["id"])
    assert stored["_yoast_wpseo_title"] == SEO["title"]
    assert stored["_yoast_wpseo_metadesc"] == SEO["description"]
    assert stored["_yoast_wpseo_focuskw"] == SEO["focus_keyword"]
    assert stored["_yoast_wpseo_canonical"] == SEO["canonical_url"]
    assert stored["_yoast_wpseo_meta-robots-noindex"] == "1"
    assert stored["_igny8_seo"] == SEO
    assert not any(key.startswith("rank_math_") for key in stored)

    # A write replaces the object: absent keys are cleared, noindex false is Yoast's explicit '2'.
    updated = update_post(wordpress_site, post["id"], igny8_seo={"title": "Shorter", "noindex": False})
    assert updated.status_code == 200, updated.text
    expected = {"title": "Shorter", "description": None, "focus_keyword": None, "canonical_url": None, "noindex": False}
    assert updated.json()["igny8_seo"] == expected
    stored = post_meta(wordpress_site, post["id"])
    assert (stored["_yoast_wpseo_title"], stored["_yoast_wpseo_meta-robots-noindex"]) == ("Shorter", "2")
    assert "_yoast_wpseo_metadesc" not in stored and "_yoast_wpseo_canonical" not in stored

    # Read back from Yoast's keys (edited there, as Yoast's own editor would).
    php(wordpress_site, f"update_post_meta({post['id']}, '_yoast_wpseo_metadesc', 'Set in Yoast'); echo 1;")
    read = requests.get(
        wordpress_site.rest(f"wp/v2/posts/{post['id']}"),
        params={"context": "edit"},
        auth=wordpress_site.app_password_auth,
        timeout=TIMEOUT,
    )
    assert read.json()["igny8_seo"]["description"] == "Set in Yoast"
    assert read.json()["meta"]["_yoast_wpseo_title"] == "Shorter"

    # The keys are writable over REST too, and Yoast's variables survive the sanitizing.
    variables = "%%title%% %%sep%% %%date%% %%sitename%%"
    direct = update_post(wordpress_site, post["id"], meta={"_yoast_wpseo_title": variables})
    assert direct.status_code == 200, direct.text
    assert post_meta(wordpress_site, post["id"])["_yoast_wpseo_title"] == variables
    assert direct.json()["igny8_seo"]["title"] == variables

    # Yoast prints the tags: the plugin adds none (no duplicates).
    head = head_of(post["link"])
    assert head.descriptions == []
    assert len(head.titles) == 1 and "Shorter" not in head.titles[0]
    assert head.canonicals == [post["link"]]
    assert len(head.robots) <= 1 and not any("noindex" in robots for robots in head.robots)


def test_igny8_seo_lands_in_the_rank_math_keys_when_rank_math_is_active(wordpress_site, seo_plugin):
    seo_plugin("rank_math")

    created = create_post(wordpress_site, igny8_seo=SEO)

    assert created.status_code == 201, created.text
    post = created.json()
    assert post["igny8_seo"] == SEO
    stored = post_meta(wordpress_site, post["id"])
    assert stored["rank_math_title"] == SEO["title"]
    assert stored["rank_math_description"] == SEO["description"]
    assert stored["rank_math_focus_keyword"] == SEO["focus_keyword"]
    assert stored["rank_math_canonical_url"] == SEO["canonical_url"]
    assert stored["rank_math_robots"] == ["noindex"]
    assert not any(key.startswith("_yoast_wpseo_") for key in stored)

    # noindex false is ['index']; Rank Math's other directives are kept.
    php(wordpress_site, f"update_post_meta({post['id']}, 'rank_math_robots', ['noindex', 'nofollow']); echo 1;")
    updated = update_post(wordpress_site, post["id"], igny8_seo={**SEO, "noindex": False})
    assert updated.status_code == 200, updated.text
    assert updated.json()["igny8_seo"]["noindex"] is False
    assert post_meta(wordpress_site, post["id"])["rank_math_robots"] == ["index", "nofollow"]

    head = head_of(post["link"])
    assert head.descriptions == [] and SEO["title"] not in head.titles[0]
    assert head.canonicals == [post["link"]]


def test_without_an_seo_plugin_the_plugin_prints_the_tags_once(wordpress_site, seo_plugin):
    created = create_post(wordpress_site, igny8_seo=SEO)
    assert created.status_code == 201, created.text
    post = created.json()
    stored = post_meta(wordpress_site, post["id"])
    assert stored["_igny8_seo"] == SEO
    assert not any(key.startswith(("_yoast_wpseo_", "rank_math_")) for key in stored)

    head = head_of(post["link"])

    assert head.titles == [SEO["title"]]
    assert head.descriptions == [SEO["description"]]
    assert head.canonicals == [SEO["canonical_url"]]
    assert len(head.robots) == 1 and "noindex" in head.robots[0]

    # Cleared: WordPress's own title and canonical again, no description, indexable.
    cleared = update_post(wordpress_site, post["id"], igny8_seo=None)
    assert cleared.status_code == 200, cleared.text
    assert set(cleared.json()["igny8_seo"].values()) == {None}
    head = head_of(post["link"])
    assert len(head.titles) == 1 and SEO["title"] not in head.titles[0]
    assert head.descriptions == []
    assert head.canonicals == [post["link"]]
    assert not any("noindex" in robots for robots in head.robots)


def test_the_structure_reports_the_active_seo_plugin(wordpress_site, seo_plugin, api_key):
    seen = {}
    for name in ("yoast", "rank_math", None):
        seo_plugin(name)
        response = requests.get(
            wordpress_site.rest("igny8/v1/structure"), headers={"X-API-Key": api_key}, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text
        seen[name] = response.json()["seo_plugin"]
    assert seen == {"yoast": "yoast", "rank_math": "rank_math", None: "none"}


@pytest.mark.parametrize(
    "bad",
    [
        "not an object",
        {"noindex": "perhaps"},
        {"title": 42},
        {"canonical_url": "javascript:alert(1)"},
        {"canonical_url": "/relative/path"},
        {"title": "x" * 1001},
        {"description": "x" * 5001},
        {"unknown_field": "x"},
    ],
)
def test_bad_igny8_seo_is_400_and_creates_nothing(wordpress_site, seo_plugin, bad):
    title = f"Refused SEO {secrets.token_hex(4)}"

    response = create_post(wordpress_site, title=title, igny8_seo=bad)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "rest_invalid_param"
    assert "igny8_seo" in response.json()["data"]["params"]
    found = php(
        wordpress_site,
        f"echo json_encode(get_posts(['title' => json_decode(base64_decode('{b64(title)}')),"
        " 'post_status' => 'any', 'fields' => 'ids']));",
    )
    assert found == []


def test_a_visitor_or_a_user_who_cannot_edit_the_post_cannot_read_igny8_seo(wordpress_site, seo_plugin):
    post = create_post(wordpress_site, igny8_seo=SEO).json()
    url = wordpress_site.rest(f"wp/v2/posts/{post['id']}")

    as_visitor = requests.get(url, timeout=TIMEOUT)
    assert as_visitor.status_code == 200
    assert as_visitor.json()["igny8_seo"] is None
    assert not any(key.startswith(("_yoast_wpseo_", "rank_math_")) for key in as_visitor.json()["meta"])
    assert requests.get(url, params={"context": "edit"}, timeout=TIMEOUT).status_code == 401

    login = f"contrib_{secrets.token_hex(4)}"
    password = php(
        wordpress_site,
        f"""
        $id = wp_insert_user(['user_login' => '{login}', 'user_pass' => wp_generate_password(24),
                              'user_email' => '{login}@example.test', 'role' => 'contributor']);
        echo json_encode(WP_Application_Passwords::create_new_application_password($id, ['name' => 'e2e'])[0]);
        """,
    )
    as_contributor = requests.get(url, auth=(login, password), timeout=TIMEOUT)
    assert as_contributor.status_code == 200
    assert as_contributor.json()["igny8_seo"] is None
    assert requests.get(url, auth=wordpress_site.app_password_auth, timeout=TIMEOUT).json()["igny8_seo"] == SEO

    # Nor write it: WordPress refuses the contributor's edit of someone else's post.
    refused = requests.post(url, json={"igny8_seo": {"title": "Hijacked"}}, auth=(login, password), timeout=TIMEOUT)
    assert refused.status_code in (401, 403)
    assert post_meta(wordpress_site, post["id"])["_igny8_seo"] == SEO


# -- media ----------------------------------------------------------------------------------------


def unique_png(width: int = 640, height: int = 480) -> bytes:
    """A valid PNG with bytes never seen before (a random tEXt chunk), so hashes are fresh."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    color = secrets.token_bytes(3)
    rows = b"".join(b"\x00" + color * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"tEXt", b"Comment\x00" + secrets.token_hex(16).encode())
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def upload(site, data: bytes, headers: dict[str, str] | None = None, auth: Any = "admin") -> requests.Response:
    return requests.post(
        site.rest("wp/v2/media"),
        params={"alt_text": "A test image"},
        data=data,
        headers={
            "Content-Type": "image/png",
            "Content-Disposition": 'attachment; filename="igny8-e2e.png"',
            **(headers or {}),
        },
        auth=site.app_password_auth if auth == "admin" else auth,
        timeout=60,
    )


def find_media(site, key: str | None, sha256: str | None) -> requests.Response:
    return requests.get(
        site.rest("igny8/v1/media"),
        params={} if sha256 is None else {"source_sha256": sha256},
        headers={} if key is None else {"X-API-Key": key},
        timeout=TIMEOUT,
    )


def attachment_count(site) -> int:
    return php(site, "echo json_encode((int) wp_count_posts('attachment')->inherit);")


def test_an_upload_with_the_hash_headers_stores_them_and_the_media_route_finds_it(wordpress_site, api_key):
    data = unique_png()
    sha256 = hashlib.sha256(data).hexdigest()
    source = f"https://platform.example.com/images/{sha256[:8]}.png"

    uploaded = upload(wordpress_site, data, {"X-IGNY8-Source-SHA256": sha256.upper(), "X-IGNY8-Source-URL": source})

    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()
    assert attachment["meta"]["_igny8_source_sha256"] == sha256
    assert attachment["meta"]["_igny8_source_url"] == source
    stored = post_meta(wordpress_site, attachment["id"])
    assert (stored["_igny8_source_sha256"], stored["_igny8_source_url"]) == (sha256, source)
    assert attachment["media_details"]["sizes"].keys() >= {"thumbnail", "medium"}  # php-gd made sub-sizes

    found = find_media(wordpress_site, api_key, sha256)
    assert found.status_code == 200, found.text
    assert found.json() == [
        {
            "id": attachment["id"],
            "source_url": attachment["source_url"],
            "sha256": sha256,
            "media_details": {"width": 640, "height": 480},
        }
    ]
    assert find_media(wordpress_site, api_key, sha256.upper()).json() == found.json()
    assert find_media(wordpress_site, api_key, hashlib.sha256(b"never uploaded").hexdigest()).json() == []

    # A second attachment with the same hash: both, oldest first. A visitor sees no source meta.
    again = upload(wordpress_site, data, {"X-IGNY8-Source-SHA256": sha256})
    assert again.status_code == 201, again.text
    assert "_igny8_source_url" not in post_meta(wordpress_site, again.json()["id"])
    assert [item["id"] for item in find_media(wordpress_site, api_key, sha256).json()] == [
        attachment["id"],
        again.json()["id"],
    ]
    public = requests.get(wordpress_site.rest(f"wp/v2/media/{attachment['id']}"), timeout=TIMEOUT).json()
    assert "_igny8_source_sha256" not in public["meta"]


def test_an_upload_without_the_headers_has_no_hash(wordpress_site):
    uploaded = upload(wordpress_site, unique_png(64, 64))
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["meta"]["_igny8_source_sha256"] == ""


@pytest.mark.parametrize(
    "headers",
    [
        {"X-IGNY8-Source-SHA256": "abc123"},
        {"X-IGNY8-Source-SHA256": "g" * 64},
        {"X-IGNY8-Source-SHA256": "a" * 65},
        {"X-IGNY8-Source-URL": "https://platform.example.com/only-a-url.png"},
        {"X-IGNY8-Source-SHA256": "a" * 64, "X-IGNY8-Source-URL": "ftp://platform.example.com/x.png"},
        {"X-IGNY8-Source-SHA256": "a" * 64, "X-IGNY8-Source-URL": "https://x.example/" + "a" * 2100},
    ],
)
def test_malformed_hash_headers_are_400_before_anything_is_uploaded(wordpress_site, headers):
    before = attachment_count(wordpress_site)

    response = upload(wordpress_site, unique_png(32, 32), headers)

    assert response.status_code == 400, response.text
    assert response.json()["code"].startswith("igny8_bridge_invalid_source")
    assert attachment_count(wordpress_site) == before


def test_the_media_route_refuses_a_malformed_hash_and_a_missing_or_wrong_key(wordpress_site, api_key):
    sha256 = hashlib.sha256(b"x").hexdigest()
    for bad in ("abc", "z" * 64, sha256 + "0", ""):
        response = find_media(wordpress_site, api_key, bad)
        assert response.status_code == 400, (bad, response.text)
    assert find_media(wordpress_site, api_key, None).status_code == 400

    assert find_media(wordpress_site, None, sha256).status_code in (401, 403)
    assert find_media(wordpress_site, "wrong-key", sha256).status_code in (401, 403)
    # Application Password credentials are not the site API key.
    with_wp_auth = requests.get(
        wordpress_site.rest("igny8/v1/media"),
        params={"source_sha256": sha256},
        auth=wordpress_site.app_password_auth,
        timeout=TIMEOUT,
    )
    assert with_wp_auth.status_code in (401, 403)


def test_a_visitor_cannot_upload_with_the_headers(wordpress_site):
    before = attachment_count(wordpress_site)
    response = upload(wordpress_site, unique_png(32, 32), {"X-IGNY8-Source-SHA256": "a" * 64}, auth=None)
    assert response.status_code == 401, response.text
    assert attachment_count(wordpress_site) == before
