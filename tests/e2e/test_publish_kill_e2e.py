"""A worker SIGKILLed mid-publish leaves no duplicate attachment or post (issue 21).

The real WordPress 6.1 (with or without the companion plugin), a real ``celery worker`` process
on PostgreSQL and Redis (started like tests/integration does), a local image server. The test-only
mu-plugin igny8-e2e-hold.php (scripts/wordpress/mu-plugins/) holds the chosen REST requests after
WordPress has done their work and before their answer is sent, so the worker is killed at the
dangerous moment, deterministically:

* ``media``: the featured image is uploaded and recorded; the upload of the first inline image
  has made its attachment, but the service has only its ``pending`` row; the last image is not
  uploaded yet.
* ``post``: the images are done, the post exists in WordPress; the service has its push intent,
  not the post id.

Then the hold is released and a fresh worker either gets the killed worker's unacknowledged task
from the broker (the test triggers kombu's visibility-timeout sweep rather than waiting for it) or,
as with the production defaults, marks the silent job failed, after which the client publishes
again. The job must end ``success`` with one post and one attachment per distinct image: the dead
upload's attachment is adopted (by source hash with the plugin, by file name and time window
without), the post likewise (by content id / by title and time window).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from kombu import Connection
from sqlalchemy import select

from bench.images import ImageServer, noisy_jpeg, png
from integration_service.extensions import db
from integration_service.models import Content, JobStatus, SiteMedia, SyncEvent
from integration_service.sync.media_html import find_images
from tests.e2e.article import article_images, inline_images_html
from tests.support.live_worker import Worker, live_celery_app, require_services, start_workers

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BASE = "/api/v1/integration/integrations"
PLUGIN_ADMIN = "require_once ABSPATH . 'wp-admin/includes/plugin.php'; const PLUGIN = 'igny8-bridge/igny8-bridge.php'; "
# One request at a time to the site (so the images are uploaded one after the other, in the
# post's order): a held php -S process may also sit on a second connection it accepted, which
# would then run (an upload!) at an unknown moment after the release. A killed worker's
# politeness slot frees itself after 1 s. The visibility timeout stays the default hour: a running
# task is never handed to the worker's other thread meanwhile (``redeliver_unacked``).
WORKER_ENV = {"WP_CONCURRENCY": "1", "WP_SLOT_LEASE_SECONDS": "1"}
DISTINCT_IMAGES = 3  # cover.png, c.png and the bytes a.jpg and copy/b.jpg share


@pytest.fixture(autouse=True)
def _require_services() -> None:
    require_services("this test")


@pytest.fixture
def live_app(app: Flask, database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The test app, but its Celery really sends to Redis (as tests/integration's ``live_app``)."""
    with live_celery_app(app, database_url, redis_url, tmp_path) as live:
        yield live


@pytest.fixture
def start_worker(app: Flask, database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Any]:
    workers, start = start_workers(app, database_url, redis_url, tmp_path, "pkill", **WORKER_ENV)
    yield start
    for worker in workers:
        worker.kill()  # idle by now: no warm shutdown to wait for


class Hold:
    """Drives igny8-e2e-hold.php through its folder in the site's wp-content."""

    def __init__(self, site: Any) -> None:
        self.dir = Path(site.root) / "wp-content" / "igny8-e2e-hold"

    def clear(self) -> None:
        if self.dir.is_dir():
            for path in self.dir.iterdir():
                path.unlink(missing_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)

    def arm(self, method: str, route: str, skip: int = 0) -> None:
        self.clear()
        config = {"method": method, "route": route, "skip": skip, "timeout": 60}
        (self.dir / "hold.json").write_text(json.dumps(config))

    def held(self) -> list[dict[str, Any]]:
        found = []
        for path in self.dir.glob("held-*"):
            try:
                found.append(json.loads(path.read_text() or "{}"))
            except (OSError, ValueError):
                found.append({})  # being written (or removed) right now
        return found

    def wait_held(self, count: int, worker: Worker, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = self.held()
            if len(held) >= count and all(entry.get("id") for entry in held):
                return held
            time.sleep(0.05)
        raise AssertionError(f"{len(self.held())} requests held, not {count}:\n{worker.log()[-3000:]}")

    def release(self, timeout: float = 30) -> None:
        """Let the held requests answer (to nobody) and wait until they have."""
        (self.dir / "hold.json").unlink(missing_ok=True)
        (self.dir / "release").write_text("")
        deadline = time.monotonic() + timeout
        while self.held() and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def hold(wordpress_site: Any) -> Iterator[Hold]:
    hold = Hold(wordpress_site)
    hold.clear()
    yield hold
    hold.release()
    hold.clear()


@pytest.fixture
def images() -> Iterator[ImageServer]:
    # New bytes on every run: the site keeps the attachments of earlier runs, which must not match.
    cover, red = png(tuple(secrets.token_bytes(3)), (600, 315)), png(tuple(secrets.token_bytes(3)), (400, 300))
    with article_images(noisy_jpeg(secrets.randbelow(2**31), 60_000), cover, red) as server:
        yield server


@pytest.fixture
def plugin(request: pytest.FixtureRequest, wordpress_site: Any, site: Any) -> Iterator[bool]:
    """The companion plugin active and connected (the site's API key stored in it, as connecting
    does), or deactivated for the test (core REST lookups only)."""
    from tests.support.wordpress import eval_php

    def php(code: str) -> str:
        return eval_php(wordpress_site.name, PLUGIN_ADMIN + code)

    if request.param == "plugin":
        key = base64.b64encode(site.plain_api_key.encode()).decode()
        previous = php(
            "$old = get_option(IGNY8_BRIDGE_OPT_API_KEY, '');"
            f" update_option(IGNY8_BRIDGE_OPT_API_KEY, base64_decode('{key}')); echo base64_encode($old);"
        )
        try:
            yield True
        finally:
            php(f"update_option(IGNY8_BRIDGE_OPT_API_KEY, base64_decode('{previous.strip()}')); echo 1;")
        return
    php("deactivate_plugins(PLUGIN); echo json_encode(true);")
    try:
        yield False
    finally:
        php("activate_plugin(PLUGIN); echo json_encode(true);")


def rest_get(site: Any, route: str, **params: Any) -> Any:
    response = requests.get(site.rest(route), params=params, auth=site.app_password_auth, timeout=30)
    response.raise_for_status()
    return response


def attachment_total(site: Any) -> int:
    return int(rest_get(site, "wp/v2/media", per_page=1).headers["X-WP-Total"])


def redeliver_unacked(redis_url: str) -> None:
    """What the broker does once the visibility timeout of a dead worker's unacknowledged task has
    passed: kombu's own sweep (the one every worker runs), with a zero timeout, so now. (A short
    CELERY_VISIBILITY_TIMEOUT would do it too, but then a live worker also hands its own task,
    still running, to its second thread: a takeover of a live run, another test.)"""
    with Connection(redis_url, transport_options={"visibility_timeout": 0}) as connection:
        channel: Any = connection.default_channel
        channel.qos.restore_visible(interval=1)


def wait_finished(event_id: int, worker: Worker, timeout: float = 45) -> SyncEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        event = db.session.get(SyncEvent, event_id)
        assert event is not None
        if event.status not in (JobStatus.queued, JobStatus.running):
            return event
        time.sleep(0.2)
    raise AssertionError(f"the job did not finish in {timeout} s:\n{worker.log()[-3000:]}")


@pytest.mark.parametrize(
    ("kill_at", "recovery", "plugin"),
    [
        ("media", "redelivered", "plugin"),
        ("media", "redelivered", "no-plugin"),
        ("post", "redelivered", "plugin"),
        ("post", "redelivered", "no-plugin"),
        ("media", "published again", "plugin"),  # the lookups are the redelivered cases'
    ],
    indirect=["plugin"],
)
def test_a_worker_killed_mid_publish_leaves_no_duplicate(
    kill_at,
    recovery,
    plugin,
    hold,
    live_app,
    start_worker,
    wordpress_site,
    factory,
    site,
    editor,
    images,
    redis_url,
    integration,
):
    """``redelivered``: the broker hands the task to the next worker, the same job ends success.
    ``published again``: the production defaults' path (the visibility timeout, an hour, is far
    longer than SYNC_STUCK_AFTER_SECONDS): the next worker's sweep marks the silent job failed (a
    publish is not resumed), and the client publishes again; the new job ends success."""
    started = time.monotonic()
    title = f"Killed mid-publish {secrets.token_hex(4)}"
    html = inline_images_html(images)
    content = factory.content(
        site,
        # The site keeps the posts of earlier runs, whose _igny8_content_id are this database's
        # ids of then (1, 2, ...): an id of its own, so the plugin's lookup finds only this run's.
        id=secrets.randbelow(10**9) + 10**9,
        title=title,
        content_html=html,
        status="published",
        featured_image={"url": images.url("/cover.png"), "alt": "Cover alt"},
    )
    hashes = {hashlib.sha256(body).hexdigest() for body in images.files.values()}
    assert len(hashes) == DISTINCT_IMAGES
    attachments_before = attachment_total(wordpress_site)
    first = start_worker()
    client = live_app.test_client()
    headers = {"Authorization": f"Bearer {factory.token(editor)}"}

    # The dangerous moment: WordPress has stored what the worker asked for, the worker has no answer.
    if kill_at == "media":
        hold.arm("POST", "/wp/v2/media", skip=1)  # the featured image goes through, a.jpg is held
    else:
        hold.arm("POST", "/wp/v2/posts")  # the create (an update is /wp/v2/posts/ID)
    response = client.post(
        f"{BASE}/{integration.id}/publish_content/", json={"content_id": content.id}, headers=headers
    )
    assert response.status_code == 202, response.get_json()
    event_id = response.get_json()["sync_event_id"]
    (held,) = hold.wait_held(1, first)
    first.kill()
    killed_at = time.monotonic()

    db.session.expire_all()
    states = {
        row.source_url.removeprefix(images.base): row.state
        for row in db.session.scalars(select(SiteMedia).where(SiteMedia.site_id == site.id))
    }
    stored = db.session.get(Content, content.id)
    assert stored.external_id is None
    if kill_at == "media":  # two attachments made, one of them not recorded
        assert states == {"/cover.png": "done", "/a.jpg": "pending"}, states
        assert attachment_total(wordpress_site) == attachments_before + 2
    else:  # every image recorded, the post made but not its id
        assert states == dict.fromkeys(["/cover.png", "/a.jpg", "/copy/b.jpg", "/c.png"], "done"), states
        assert stored.push_intent is not None
    hold.release()

    if recovery == "redelivered":
        redeliver_unacked(redis_url)
        second = start_worker()
    else:
        # Silent for 2 s is dead (its own jobs beat every 0.3 s); swept every 0.5 s.
        stuck = {
            "SYNC_STUCK_AFTER_SECONDS": "2",
            "SYNC_HEARTBEAT_SECONDS": "0.3",
            "SYNC_RECOVERY_INTERVAL_SECONDS": "0.5",
        }
        second = start_worker(**stuck)
        dead = wait_finished(event_id, second)
        assert dead.status == JobStatus.failed and "heartbeats" in (dead.error_message or ""), dead.error_message
        response = client.post(
            f"{BASE}/{integration.id}/publish_content/", json={"content_id": content.id}, headers=headers
        )
        assert response.status_code == 202, response.get_json()
        event_id = response.get_json()["sync_event_id"]
    event = wait_finished(event_id, second)
    recovered_after = time.monotonic() - killed_at

    assert event.status == JobStatus.success, f"{event.status} {event.error_message}\n{second.log()[-3000:]}"
    # The redelivered run uploaded only what the killed one had not: c.png, or nothing.
    uploaded = 1 if kill_at == "media" else 0
    assert (event.details["media_uploaded"], event.details["media_reused"]) == (uploaded, 4 - uploaded), event.details
    assert event.details["pushed"] == 1, event.details
    adopted = f"adopting attachment {held['id']}" if kill_at == "media" else f"adopting post {held['id']}"
    assert adopted in second.log(), second.log()[-3000:]

    # One attachment per distinct image.
    assert attachment_total(wordpress_site) == attachments_before + DISTINCT_IMAGES
    attachment_ids = set()
    for sha in hashes:
        found = rest_get(wordpress_site, "wp/v2/media", search=sha[:12], context="edit", _fields="id").json()
        assert len(found) == 1, (sha, found)
        attachment_ids.add(found[0]["id"])
    if kill_at == "media":
        assert held["id"] in attachment_ids  # the one whose answer the killed worker never had
    rows = db.session.scalars(select(SiteMedia).where(SiteMedia.site_id == site.id)).all()
    assert len(rows) == 4 and {row.state for row in rows} == {"done"}
    assert {row.attachment_id for row in rows} == attachment_ids

    # One post, the one the service recorded; its images are the attachments, from the uploads.
    posts = rest_get(wordpress_site, "wp/v2/posts", search=title, status="any", context="edit").json()
    assert [post["title"]["raw"] for post in posts] == [title]
    (post,) = posts
    stored = db.session.get(Content, content.id)
    assert stored.external_id == str(post["id"]) and stored.push_intent is None
    if kill_at == "post":
        assert post["id"] == held["id"]  # the one the killed worker made
    assert post["status"] == "publish" and post["featured_media"] in attachment_ids
    tags = find_images(post["content"]["raw"])
    assert len(tags) == 3
    uploads = f"{wordpress_site.url}/wp-content/uploads/"
    for tag in tags:
        assert tag.src.startswith(uploads), tag.src
        match = re.search(r"\bwp-image-(\d+)\b", tag.get("class") or "")
        assert match and int(match.group(1)) in attachment_ids, tag.get("class")
    assert images.base not in post["content"]["raw"]
    print(
        f"{kill_at}/{recovery}/{'plugin' if plugin else 'no plugin'}: finished {recovered_after:.1f} s after SIGKILL,"
        f" {time.monotonic() - started:.1f} s in all"
    )
