"""prepare_media (sync/media.py) against a media library and an image host faked with ``responses``."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import select, text

from integration_service.extensions import db
from integration_service.models import SiteMedia
from integration_service.platforms.base import PlatformError
from integration_service.sync.media import FAILED, REUSED, UPLOADED, MediaSettings, prepare_media
from integration_service.sync.media_html import find_images
from integration_service.sync.media_locks import media_lock_key
from tests.platforms.fakes import (
    APP_PASSWORD,
    SITE,
    USERNAME,
    add_wordpress,
    basic,
    fake_dns_fixture,  # noqa: F401 - fixture
    make_client,
    mocked_fixture,  # noqa: F401 - fixture
)
from tests.sync.media_fakes import IMAGES, FakeMediaLibrary, ImageHost, image_bytes

pytestmark = pytest.mark.usefixtures("fake_dns")

RED, BLUE, GREEN = image_bytes((200, 0, 0)), image_bytes((0, 0, 200)), image_bytes((0, 200, 0), (120, 80), "JPEG")


@pytest.fixture
def wp(mocked: responses.RequestsMock) -> FakeMediaLibrary:
    add_wordpress(mocked)
    return FakeMediaLibrary(mocked)


@pytest.fixture
def host(mocked: responses.RequestsMock) -> ImageHost:
    return ImageHost(mocked)


def settings_for(client: Any, **config: Any) -> MediaSettings:
    # One image at a time unless a test asks for more: attachment ids then follow the order.
    defaults = {"MEDIA_MAX_BYTES": 1024 * 1024, "MEDIA_LOCK_WAIT_SECONDS": 2, "MEDIA_PARALLEL": 1}
    return MediaSettings.for_client(client, {**defaults, **config})


def prepare(site: Any, html: str, featured: dict | None = None, client: Any = None, **config: Any):
    client = client or make_client()
    return prepare_media(client, site.id, html, featured, settings=settings_for(client, **config))


def rows() -> list[SiteMedia]:
    return list(db.session.scalars(select(SiteMedia).order_by(SiteMedia.id)))


def test_featured_and_inline_images_are_uploaded_and_the_img_tags_rewritten(site, wp, host):
    red, blue = host.serve("a/red.png", RED), host.serve("b/Blue%20Sky.png", BLUE)
    html = f'<p>Intro</p>\n<img src="{blue}" alt="Blue sky" class="aligncenter" srcset="{blue} 2x">'
    prepared = prepare(site, html, {"url": red, "alt": "Red", "caption": "A red square", "title": "Cover"})

    assert prepared.ok and (prepared.uploaded, prepared.reused, prepared.failed) == (2, 0, 0)
    assert [item.status for item in prepared.items] == [UPLOADED, UPLOADED]
    featured, inline = wp.attachments[100], wp.attachments[101]
    assert prepared.featured_media_id == 100
    assert prepared.items[0].external_id == "100" and prepared.items[0].external_url == featured["source_url"]
    # One raw-body upload each, with the source headers the plugin stores, and the app password.
    assert [u["filename"] for u in wp.uploads] == [
        f"red-{hashlib.sha256(RED).hexdigest()[:12]}.png",
        f"blue-sky-{hashlib.sha256(BLUE).hexdigest()[:12]}.png",
    ]
    assert wp.uploads[0]["sha256"] == wp.uploads[0]["sha256_header"] == hashlib.sha256(RED).hexdigest()
    assert wp.uploads[0]["source_url_header"] == red and wp.uploads[0]["content_type"] == "image/png"
    assert wp.uploads[0]["authorization"] == "Basic " + basic(USERNAME, APP_PASSWORD)
    # alt and caption on the upload, the title set afterwards (the upload keeps its file-name title
    # until the row is done, so an interrupted upload can be found by it).
    assert (featured["alt_text"], featured["caption"], featured["title"]) == ("Red", "A red square", "Cover")
    assert inline["alt_text"] == "Blue sky"
    assert prepared.content_html == (
        f'<p>Intro</p>\n<img src="{inline["source_url"]}" alt="Blue sky" class="aligncenter wp-image-101"'
        ' width="64" height="48">'
    )
    assert [(r.state, r.attachment_id, r.mime, r.width) for r in rows()] == [
        ("done", 100, "image/png", 64),
        ("done", 101, "image/png", 64),
    ]


def test_a_repush_of_unchanged_content_fetches_and_uploads_nothing(site, wp, host, mocked):
    url = host.serve("red.png", RED)
    html = f'<img src="{url}" alt="Red">'
    first = prepare(site, html, {"url": url, "alt": "Red"})
    calls = len(mocked.calls)
    second = prepare(site, html, {"url": url, "alt": "Red"})

    assert first.uploaded == 1 and (second.uploaded, second.reused) == (0, 1)
    assert second.content_html == first.content_html and second.featured_media_id == first.featured_media_id
    assert host.count("red.png") == 1 and len(wp.uploads) == 1
    assert len(mocked.calls) == calls  # not one request: the rows know the attachment and its alt text


def test_the_same_bytes_under_other_urls_and_the_same_url_twice_are_one_upload(site, wp, host):
    one, two = host.serve("one.png", RED), host.serve("copy/two.png", RED)
    html = f'<img src="{one}"><img src="{two}"><img src="{one}" alt="again">'
    prepared = prepare(site, html)

    assert len(wp.uploads) == 1 and (prepared.uploaded, prepared.reused) == (1, 1)
    assert [item.external_id for item in prepared.items] == ["100", "100"]
    assert [tag.get("class") for tag in find_images(prepared.content_html)] == ["wp-image-100"] * 3
    assert host.count("one.png") == 1 and host.count("copy/two.png") == 1
    # A later post with the second URL reuses it without fetching again.
    again = prepare(site, f'<img src="{two}">')
    assert again.reused == 1 and host.count("copy/two.png") == 1 and len(wp.uploads) == 1


def test_alt_text_is_set_on_a_reused_attachment_only_where_it_has_none(site, wp, host):
    url = host.serve("red.png", RED)
    prepare(site, f'<img src="{url}">')
    assert wp.attachments[100]["alt_text"] == ""
    prepare(site, f'<img src="{url}" alt="First alt">')
    prepare(site, f'<img src="{url}" alt="Second alt">')
    assert wp.attachments[100]["alt_text"] == "First alt"
    assert wp.updates == [(100, {"alt_text": "First alt"})]


def test_html_is_unchanged_except_the_img_tags_it_rewrites(site, wp, host):
    url = host.serve("red.png", RED)
    html = (
        "<!-- wp:paragraph -->\r\n<p class='x'>Caf&eacute; &amp; <b>bold</b> &#x27;q&#x27;<br/>\r\n</p>\n"
        f'<!-- <img src="{url}"> -->\n<script>var s = \'<img src="{url}">\';</script>\n'
        f"<figure><IMG  SRC='{url}' ALT=\"A &quot;quoted&quot; alt\" data-x=1 /></figure>\n"
        f'<img src="{SITE}/wp-content/uploads/own.png"><img src="/relative.png"><img src="data:image/png;base64,AA==">'
        "<p>tail &lt;img&gt;</p>"
    )
    prepared = prepare(site, html)
    assert prepared.uploaded == 1 and len(prepared.items) == 1
    tags = find_images(html)
    changed = tags[0]
    new_text = (
        f'<img src="{wp.attachments[100]["source_url"]}" alt="A &quot;quoted&quot; alt" data-x="1"'
        ' class="wp-image-100" width="64" height="48" />'
    )
    assert prepared.content_html == html[: changed.start] + new_text + html[changed.end :]


def test_tags_keep_their_own_width_and_height_and_other_wp_image_classes_go(site, wp, host):
    url = host.serve("red.png", RED)
    prepared = prepare(site, f'<img class="wp-image-7 big" src="{url}" width="10" height="5">')
    assert (
        prepared.content_html
        == f'<img class="big wp-image-100" src="{wp.attachments[100]["source_url"]}" width="10" height="5">'
    )


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "image/svg+xml", "SVG"),
        (b"<html><body>not an image</body></html>", "image/jpeg", "not a JPEG, PNG, GIF, WebP or AVIF"),
        (b"GIF89a but truncated", "image/gif", "not a JPEG, PNG, GIF, WebP or AVIF"),
        (image_bytes(fmt="BMP"), "image/bmp", "not a JPEG, PNG, GIF, WebP or AVIF"),
        (b"", "image/png", "empty body"),
    ],
)
def test_the_type_is_decided_from_the_bytes(site, wp, host, body, content_type, reason):
    url = host.serve("disguised.jpg", body, content_type=content_type)
    ok = host.serve("ok.png", RED)
    html = f'<img src="{url}"><img src="{ok}">'
    prepared = prepare(site, html)
    assert not prepared.ok and (prepared.failed, prepared.uploaded) == (1, 1)
    failed = prepared.items[0]
    assert (failed.source_url, failed.status, failed.external_id) == (url, FAILED, None)
    assert reason in (failed.error or "")
    assert prepared.content_html.startswith(f'<img src="{url}">')  # a failed image's tag is left as it was
    assert [u["sha256"] for u in wp.uploads] == [hashlib.sha256(RED).hexdigest()]
    assert [r.source_url for r in rows()] == [ok]


def test_other_image_formats_are_uploaded_with_their_type(site, wp, host):
    urls = [host.serve(f"i.{fmt.lower()}", image_bytes(fmt=fmt)) for fmt in ("GIF", "WEBP", "AVIF")]
    jpeg = host.serve("photo", GREEN, content_type="application/octet-stream")
    prepared = prepare(site, "".join(f'<img src="{u}">' for u in [*urls, jpeg]))
    assert prepared.uploaded == 4
    assert [u["content_type"] for u in wp.uploads] == ["image/gif", "image/webp", "image/avif", "image/jpeg"]
    assert wp.uploads[3]["filename"].endswith(".jpg")


def test_an_image_over_the_size_cap_fails(site, wp, host):
    url = host.serve("big.png", image_bytes(size=(900, 900)) + b"\0" * 5000)
    prepared = prepare(site, f'<img src="{url}">', MEDIA_MAX_BYTES=4096)
    assert prepared.failed == 1 and "larger than the limit of 4096 bytes" in (prepared.items[0].error or "")
    assert wp.uploads == [] and rows() == []


@pytest.mark.parametrize("status", [404, 410, 403])
def test_an_image_host_refusal_fails_the_image(site, wp, host, status):
    url = host.serve("gone.png", b"nope", status=status, content_type="text/html")
    prepared = prepare(site, "", {"url": url})
    assert prepared.failed == 1 and prepared.featured_media_id is None
    assert prepared.items[0].error == f"the image host answered HTTP {status}"


def test_a_refused_address_fails_the_image_without_a_request(site, wp, mocked):
    prepared = prepare(
        site, '<img src="http://private.example.test/a.png"><img src="https://metadata.example.test/x.png">'
    )
    assert prepared.failed == 2
    assert all("not allowed" in (item.error or "") for item in prepared.items)
    assert len(mocked.calls) == 0  # refused before any connection (and WordPress never needed)


def test_a_redirect_to_a_refused_address_fails_the_image(site, wp, mocked):
    mocked.get(f"{IMAGES}/hop.png", status=302, headers={"Location": "http://10.0.0.5/secret.png"})
    prepared = prepare(site, f'<img src="{IMAGES}/hop.png">')
    assert prepared.failed == 1 and "not allowed" in (prepared.items[0].error or "")


@pytest.mark.parametrize("status", [503, 429, 500])
def test_transient_image_host_failures_raise_so_the_job_retries(site, wp, host, status):
    url = host.serve("flaky.png", b"busy", status=status, content_type="text/plain")
    with pytest.raises(PlatformError) as caught:
        prepare(site, f'<img src="{url}">')
    assert caught.value.transient
    # The transport retries 429/502/503/504 (twice here) before the error goes to the job.
    assert host.count("flaky.png") == (1 if status == 500 else 3)
    assert rows() == []


def test_an_unreachable_image_host_raises_transient(site, wp, mocked):
    mocked.get(f"{IMAGES}/down.png", body=requests.ConnectionError("refused"))
    with pytest.raises(PlatformError) as caught:
        prepare(site, f'<img src="{IMAGES}/down.png">')
    assert caught.value.transient


def test_wordpress_refusing_the_file_fails_the_image_and_leaves_no_row(site, wp, host):
    url = host.serve("red.png", RED)
    wp.fail_next_upload = (500, {"code": "rest_upload_sideload_error", "message": "Sorry, not allowed."})
    prepared = prepare(site, f'<img src="{url}">')
    assert prepared.failed == 1 and "rest_upload_sideload_error" in (prepared.items[0].error or "")
    assert rows() == []
    assert prepare(site, f'<img src="{url}">').uploaded == 1  # a later push tries again


@pytest.mark.parametrize("status", [500, 503, 429])
def test_wordpress_failing_transiently_raises_and_the_retry_uploads_once(site, wp, host, status):
    url = host.serve("red.png", RED)
    wp.fail_next_upload = (status, {"code": "internal_server_error"})
    with pytest.raises(PlatformError) as caught:
        prepare(site, f'<img src="{url}">')
    assert caught.value.transient and [r.state for r in rows()] == ["pending"]
    assert prepare(site, f'<img src="{url}">').uploaded == 1
    assert len(wp.attachments) == 1


@pytest.mark.parametrize("plugin", [True, False])
def test_a_lost_upload_answer_is_found_again_instead_of_uploading_twice(site, mocked, host, plugin):
    add_wordpress(mocked, plugin=plugin)
    wp = FakeMediaLibrary(mocked, plugin=plugin)
    client = make_client() if plugin else make_client({"username": USERNAME, "app_password": APP_PASSWORD})
    url = host.serve("red.png", RED)
    wp.lose_next_answer = True  # WordPress stores the file; the worker never hears back (dies)
    with pytest.raises(PlatformError):
        prepare(site, f'<img src="{url}" alt="Red">', client=client)
    assert len(wp.attachments) == 1 and [r.state for r in rows()] == ["pending"]

    prepared = prepare(site, f'<img src="{url}" alt="Red">', client=make_client() if plugin else client)
    assert len(wp.uploads) == 1 and len(wp.attachments) == 1
    assert wp.lookups == (["plugin"] if plugin else ["search"])
    assert prepared.items[0].status == REUSED and prepared.items[0].external_id == "100"
    assert "wp-image-100" in prepared.content_html
    assert [(r.state, r.attachment_id) for r in rows()] == [("done", 100)]


def test_a_pending_row_whose_upload_never_arrived_is_uploaded(site, wp, host):
    url = host.serve("red.png", RED)
    wp.fail_next_upload = (502, {})
    with pytest.raises(PlatformError):
        prepare(site, f'<img src="{url}">')
    prepared = prepare(site, f'<img src="{url}">')
    assert prepared.uploaded == 1 and wp.lookups == ["plugin"] and len(wp.attachments) == 1


def test_a_deleted_attachment_is_uploaded_again(site, wp, host):
    url = host.serve("red.png", RED)
    prepare(site, f'<img src="{url}">')
    del wp.attachments[100]
    prepared = prepare(site, f'<img src="{url}" alt="new alt">')
    assert prepared.uploaded == 1 and prepared.items[0].external_id == "101"
    assert [(r.state, r.attachment_id) for r in rows()] == [("done", 101)]


def test_media_of_one_site_is_not_reused_on_another(site, factory, wp, host):
    url = host.serve("red.png", RED)
    prepare(site, f'<img src="{url}">')
    other = factory.site(url="https://other.example.com")
    assert prepare(other, f'<img src="{url}">').uploaded == 1
    assert len(wp.uploads) == 2


def test_no_images_no_requests(site, mocked):
    html = "<p>No images at all.</p>"
    prepared = prepare(site, html)
    assert prepared.content_html == html and prepared.items == [] and prepared.ok and prepared.featured_media_id is None
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("same_url", [False, True])
def test_concurrent_jobs_upload_the_same_new_image_once(site, wp, host, app, same_url):
    """Four threads (as four jobs) publish posts with the same new image at once (under four
    URLs, or one): one upload, and one fetch per URL."""
    import threading

    urls = [host.serve("same.png", RED)] * 4 if same_url else [host.serve(f"same-{i}.png", RED) for i in range(4)]
    results: list[Any] = []
    errors: list[BaseException] = []
    # Only the id crosses into the threads (as a job gets only ids): ``site`` belongs to the test's
    # session, and four threads refreshing it at once would share that session's connection.
    site_ref = SimpleNamespace(id=site.id)

    def run(url: str) -> None:
        with app.app_context():
            try:
                results.append(prepare(site_ref, f'<img src="{url}">'))
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(wp.uploads) == 1
    assert sorted(r.uploaded for r in results) == [0, 0, 0, 1]
    assert {r.items[0].external_id for r in results} == {"100"}
    assert sum(host.hits.values()) == (1 if same_url else 4)


def test_an_upload_of_the_same_bytes_by_another_process_makes_the_job_retry(site, wp, host):
    """The PostgreSQL advisory lock (what another worker process holds while it uploads)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the cross-process lock is PostgreSQL's")
    url = host.serve("red.png", RED)
    with db.engine.connect() as other_worker:
        assert other_worker.scalar(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": media_lock_key(site.id, hashlib.sha256(RED).hexdigest())}
        )
        with pytest.raises(PlatformError) as caught:
            prepare(site, f'<img src="{url}">', MEDIA_LOCK_WAIT_SECONDS=0.3)
        assert caught.value.transient and "uploading the same image" in caught.value.message
        other_worker.execute(text("SELECT pg_advisory_unlock_all()"))
        other_worker.commit()
    assert wp.uploads == []
    assert prepare(site, f'<img src="{url}">').uploaded == 1


def test_the_images_of_one_post_are_prepared_in_parallel(site, wp, host, monkeypatch):
    import threading
    import time as time_module

    colors = [(i * 40, 10, 10) for i in range(4)]
    urls = [host.serve(f"p{i}.png", image_bytes(color)) for i, color in enumerate(colors)]
    in_flight, peak, guard = [0], [0], threading.Lock()
    upload = wp._post

    def slow_upload(request: Any):
        with guard:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time_module.sleep(0.2)
        try:
            with guard:  # responses' callbacks are not thread-safe themselves
                return upload(request)
        finally:
            with guard:
                in_flight[0] -= 1

    monkeypatch.setattr(wp, "_post", slow_upload)
    html = "".join(f'<img src="{u}" alt="{i}">' for i, u in enumerate(urls[1:]))
    started = time_module.monotonic()
    prepared = prepare(site, html, {"url": urls[0]}, MEDIA_PARALLEL=4)
    assert time_module.monotonic() - started < 0.7  # 4 x 0.2 s one after the other is 0.8 s
    assert prepared.uploaded == 4 and peak[0] >= 2
    by_url = {item.source_url: item.external_id for item in prepared.items}
    assert prepared.featured_media_id == int(by_url[urls[0]])
    for tag in find_images(prepared.content_html):
        attachment = wp.attachments[int(tag.get("class").split("wp-image-")[1])]
        assert tag.src == attachment["source_url"] and attachment["alt_text"] == tag.alt
