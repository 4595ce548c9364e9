"""Benchmark: publishing posts with images (issue 21) against the real WordPress.

N posts (200; ``--quick``: 40), each with a featured image and 3 inline images drawn from M
distinct JPEGs (50; quick: 10) of 100–500 kB served by a local image server, in one run:

* **naive** — a loop as users write it: for each post, fetch and upload every image
  (``POST /wp/v2/media``), then create the post; sequential, no reuse (4 x N uploads).
* **floor** — the raw requests the job cannot avoid: the M uploads (bytes already in memory),
  then the N post creates, at the service's concurrency (``WP_CONCURRENCY``, 4). Run before and
  after the service and averaged.
* **service** — ``sync.media.prepare_media`` for each post, then the post create, at the same
  concurrency, in a separate worker process (its RSS is sampled). Until the publish task of
  issue 21 lands, this arm calls ``prepare_media`` and creates the post with the client's own
  ``call`` directly (the same body as the floor's), not through ``integration.publish_content``.

Uploads are counted from the WordPress request log (the bench mu-plugin). Goals: service >= 3x
naive, >= 0.8 of the floor, uploads = M, worker peak RSS growth < 50 MB. Attachments and posts of
earlier runs are deleted from the bench site first.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import requests

from . import common, wp
from .common import RESULTS_DIR, log, print_table, ratio, write_result
from .images import ImageServer, noisy_jpeg

SITE_NAME = "bench-publish"
SITE_PORT = 8927
TITLE_PREFIX = "Bench publish"
CONCURRENCY = int(os.environ.get("WP_CONCURRENCY", "4"))
PARAGRAPH = (
    "<!-- wp:paragraph -->\n<p>Paragraph {n} of post {i}: words about the pictures below.</p>\n<!-- /wp:paragraph -->\n"
)
FIGURE = (
    '<!-- wp:image -->\n<figure class="wp-block-image"><img src="{src}" alt="{alt}"{extra}/></figure>\n'
    "<!-- /wp:image -->\n"
)


def image_set(count: int) -> dict[str, bytes]:
    """``count`` distinct JPEGs from 100 kB to 500 kB."""
    step = 400_000 / max(1, count - 1)
    return {f"/img/photo-{k:03d}.jpg": noisy_jpeg(k, int(100_000 + k * step)) for k in range(count)}


def post_images(i: int, distinct: int) -> list[int]:
    """Image numbers of post ``i``: the featured one first, then 3 inline (all distinct)."""
    return [(4 * i + j) % distinct for j in range(4)]


def post_html(i: int, images: list[tuple[str, str]]) -> str:
    """The post's body; ``images`` are (src, extra attributes) of the 3 inline images."""
    parts = [PARAGRAPH.format(n=1, i=i)]
    for n, (src, extra) in enumerate(images, start=2):
        parts.append(FIGURE.format(src=src, alt=f"Picture {n - 1} of post {i}", extra=extra))
        parts.append(PARAGRAPH.format(n=n, i=i))
    return "".join(parts)


def clear_site(site: wp.Site) -> dict[str, int]:
    return wp.eval_php(
        site,
        f"""<?php
global $wpdb;
$like = $wpdb->esc_like('{TITLE_PREFIX}') . '%';
$posts = $wpdb->get_col($wpdb->prepare(
    "SELECT ID FROM $wpdb->posts WHERE post_title LIKE %s AND post_type = 'post'", $like));
foreach ($posts as $id) {{ wp_delete_post((int) $id, true); }}
$media = $wpdb->get_col("SELECT ID FROM $wpdb->posts WHERE post_type = 'attachment'");
foreach ($media as $id) {{ wp_delete_attachment((int) $id, true); }}
wp_cache_flush();
echo json_encode(['posts' => count($posts), 'attachments' => count($media)]);
""",
    )


class RawWordPress:
    """The requests a user's script sends (requests.Session per thread, Application Password)."""

    def __init__(self, site: wp.Site) -> None:
        self.site = site
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.auth = self.site.auth
        return session

    def upload(self, body: bytes, filename: str, alt: str) -> dict[str, Any]:
        response = self.session.post(
            f"{self.site.url}/wp-json/wp/v2/media",
            params={"alt_text": alt},
            data=body,
            headers={"Content-Type": "image/jpeg", "Content-Disposition": f'attachment; filename="{filename}"'},
            timeout=120,
        )
        response.raise_for_status()
        data = response.json()
        return {"id": data["id"], "url": data["source_url"], **data.get("media_details", {})}

    def create_post(self, title: str, html: str, featured: int) -> int:
        response = self.session.post(
            f"{self.site.url}/wp-json/wp/v2/posts",
            json={"title": title, "content": html, "status": "publish", "featured_media": featured},
            timeout=120,
        )
        response.raise_for_status()
        return int(response.json()["id"])


def _tag_extra(attachment: dict[str, Any]) -> str:
    return f' class="wp-image-{attachment["id"]}" width="{attachment.get("width")}" height="{attachment.get("height")}"'


def naive_loop(raw: RawWordPress, server: ImageServer, posts: int, distinct: int) -> dict[str, Any]:
    t0 = time.monotonic()
    fetch = requests.Session()
    for i in range(posts):
        uploaded = []
        for k in post_images(i, distinct):
            path = f"/img/photo-{k:03d}.jpg"
            body = fetch.get(server.url(path), timeout=60).content
            uploaded.append(raw.upload(body, path.rsplit("/", 1)[1], f"Picture of {k}"))
        html = post_html(i, [(a["url"], _tag_extra(a)) for a in uploaded[1:]])
        raw.create_post(f"{TITLE_PREFIX} naive {i}", html, uploaded[0]["id"])
    seconds = time.monotonic() - t0
    return {"seconds": seconds, "posts_per_s": posts / seconds}


def floor(raw: RawWordPress, files: dict[str, bytes], posts: int, distinct: int, label: str) -> dict[str, Any]:
    t0 = time.monotonic()
    paths = sorted(files)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        attachments = list(pool.map(lambda p: raw.upload(files[p], p.rsplit("/", 1)[1], f"Picture of {p}"), paths))
        bodies = []
        for i in range(posts):
            ks = post_images(i, distinct)
            html = post_html(i, [(attachments[k]["url"], _tag_extra(attachments[k])) for k in ks[1:]])
            bodies.append((f"{TITLE_PREFIX} floor {label} {i}", html, attachments[ks[0]]["id"]))
        list(pool.map(lambda b: raw.create_post(*b), bodies))
    seconds = time.monotonic() - t0
    return {"seconds": seconds, "posts_per_s": posts / seconds}


# -- the service arm: its own process (python -m bench.publish --service-arm SPEC) -----------------


def service_arm(spec: dict[str, Any]) -> dict[str, Any]:
    """Publish the spec's posts as the service does (in this process), reporting time and RSS."""
    import psutil

    from integration_service import create_app
    from integration_service.extensions import db
    from integration_service.models import SiteIntegration
    from integration_service.platforms.registry import client_for
    from integration_service.platforms.wordpress import WordPressClient
    from integration_service.sync.media import prepare_media

    # Post threads x image threads (MEDIA_PARALLEL) sessions, plus a lock connection per upload.
    options = {"pool_size": CONCURRENCY * (CONCURRENCY + 1), "max_overflow": 2 * CONCURRENCY * CONCURRENCY}
    app = create_app(overrides={"SQLALCHEMY_ENGINE_OPTIONS": options})
    me = psutil.Process()
    with app.app_context():
        integration = db.session.get(SiteIntegration, spec["integration_id"])
        assert integration is not None
        # One client for every thread, as a job's: one pooled session, discovery once.
        client = cast(WordPressClient, client_for(integration))
        client.root()
        db.session.remove()
    baseline = me.memory_info().rss
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], me.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    counts = {"uploaded": 0, "reused": 0, "failed": 0}
    lock = threading.Lock()

    def publish(post: dict[str, Any]) -> None:
        with app.app_context():
            prepared = prepare_media(client, spec["site_id"], post["html"], post["featured"])
            if not prepared.ok:
                raise RuntimeError(f"media failed: {[i.error for i in prepared.items if i.error]}")
            body = {
                "title": post["title"],
                "content": prepared.content_html,
                "status": "publish",
                "featured_media": prepared.featured_media_id,
            }
            response = client.call("POST", "wp/v2/posts", json_body=body, auth="app")
            client._raise_for(response, "creating a post")
            with lock:
                for key in counts:
                    counts[key] += getattr(prepared, key)
            db.session.remove()

    t0 = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(publish, spec["posts"]))
    seconds = time.monotonic() - t0
    stop.set()
    sampler.join()
    peak[0] = max(peak[0], me.memory_info().rss)
    return {
        "seconds": seconds,
        "posts_per_s": len(spec["posts"]) / seconds,
        "media": counts,
        "rss_baseline_mb": baseline / 2**20,
        "rss_peak_mb": peak[0] / 2**20,
        "rss_growth_mb": (peak[0] - baseline) / 2**20,
    }


def run_service(spec: dict[str, Any]) -> dict[str, Any]:
    path = RESULTS_DIR / "logs" / "publish-service-spec.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    result = subprocess.run(
        [sys.executable, "-m", "bench.publish", "--service-arm", str(path)],
        cwd=common.REPO_ROOT,
        env={**os.environ, **common.service_env(LOG_LEVEL="WARNING")},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    (RESULTS_DIR / "logs" / "publish-service.log").write_text(result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"the service arm failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict[str, Any]:
    from integration_service.extensions import db
    from integration_service.models import SiteIntegration

    posts, distinct = (40, 10) if quick else (200, 50)
    site = wp.ensure_site(SITE_NAME, SITE_PORT)
    log(f"publish site ready ({clear_site(site)} of earlier runs deleted)")
    files = image_set(distinct)
    sizes = sorted(len(b) for b in files.values())
    log(f"{distinct} images, {sizes[0] // 1000}-{sizes[-1] // 1000} kB; {posts} posts x 4 images")
    common.reset_database()
    common.flush_redis()
    app = common.bench_app()
    tenant = common.create_tenant(app, [site.url], name="publish")
    site_id = tenant.sites[0]["id"]
    with app.app_context():
        integration = SiteIntegration(
            site_id=site_id,
            platform="wordpress",
            platform_type="cms",
            config_json={"site_url": site.url},
            credentials_json={"username": site.user, "app_password": site.app_password},
        )
        db.session.add(integration)
        db.session.commit()
        integration_id = integration.id

    raw = RawWordPress(site)
    with ImageServer(files) as server:
        spec = {
            "site_id": site_id,
            "integration_id": integration_id,
            "posts": [
                {
                    "title": f"{TITLE_PREFIX} service {i}",
                    "featured": {"url": server.url(f"/img/photo-{ks[0]:03d}.jpg"), "alt": f"Picture of {ks[0]}"},
                    "html": post_html(i, [(server.url(f"/img/photo-{k:03d}.jpg"), "") for k in ks[1:]]),
                }
                for i in range(posts)
                for ks in [post_images(i, distinct)]
            ],
        }
        log("warm-up: 4 uploads and 4 posts")
        warm = image_set(4)
        floor(raw, {f"/warm{p}": b for p, b in warm.items()}, 4, 4, "warm-up")
        offsets = [site.log_offset()]
        log(f"naive loop: {posts} posts, {4 * posts} uploads, sequential")
        naive = naive_loop(raw, server, posts, distinct)
        offsets.append(site.log_offset())
        log(f"floor: {distinct} uploads + {posts} posts at concurrency {CONCURRENCY}")
        floor1 = floor(raw, files, posts, distinct, "1")
        offsets.append(site.log_offset())
        log(f"service: prepare_media + create for {posts} posts at concurrency {CONCURRENCY} (worker process)")
        hits_before = sum(server.hits.values())
        svc = run_service(spec)
        fetched = sum(server.hits.values()) - hits_before
        offsets.append(site.log_offset())
        log("floor again")
        floor2 = floor(raw, files, posts, distinct, "2")
        offsets.append(site.log_offset())
        log("service again, nothing changed (a re-push of the same posts' images)")
        hits_before = sum(server.hits.values())
        repeat = run_service({**spec, "posts": [{**p, "title": p["title"] + " again"} for p in spec["posts"]]})
        refetched = sum(server.hits.values()) - hits_before
        offsets.append(site.log_offset())

    phases = {}
    labels = ("naive", "floor 1", "service", "floor 2", "service again")
    for label, (start, end) in zip(labels, itertools.pairwise(offsets), strict=True):
        lines = site.requests_since(start, end)
        phases[label] = {
            "uploads": wp.request_stats(lines, "POST", "/wp-json/wp/v2/media")["count"],
            "post_creates": wp.request_stats(lines, "POST", "/wp-json/wp/v2/posts")["count"],
            "upload_wp_ms_mean": wp.request_stats(lines, "POST", "/wp-json/wp/v2/media")["wp_ms_mean"],
            "all_requests": len(lines),
        }
    floor_rate = (floor1["posts_per_s"] + floor2["posts_per_s"]) / 2
    over_naive, over_floor = ratio(svc["posts_per_s"], naive["posts_per_s"]), ratio(svc["posts_per_s"], floor_rate)
    print_table(
        f"Publish {posts} posts with a featured + 3 inline images from {distinct} distinct images (posts/s)",
        ["arm", "seconds", "posts/s", "uploads (WordPress log)", "post creates", "WordPress ms/upload"],
        [
            [
                label,
                run_["seconds"],
                run_["posts_per_s"],
                phases[label]["uploads"],
                phases[label]["post_creates"],
                phases[label]["upload_wp_ms_mean"],
            ]
            for label, run_ in zip(labels, (naive, floor1, svc, floor2, repeat), strict=True)
        ],
    )
    print_table(
        "Service against its goals",
        ["figure", "measured", "goal", "met"],
        [
            ["service / naive loop", over_naive, ">= 3", (over_naive or 0) >= 3],
            ["service / floor (mean of 2)", over_floor, ">= 0.8", (over_floor or 0) >= 0.8],
            [
                "uploads by the service",
                phases["service"]["uploads"],
                f"= {distinct}",
                phases["service"]["uploads"] == distinct,
            ],
            ["images fetched by the service", fetched, f"= {distinct}", fetched == distinct],
            [
                "re-push: uploads, fetches",
                f"{phases['service again']['uploads']}, {refetched}",
                "0, 0",
                phases["service again"]["uploads"] == 0 and refetched == 0,
            ],
            ["worker peak RSS growth", f"{svc['rss_growth_mb']:+.1f} MB", "< 50 MB", svc["rss_growth_mb"] < 50],
        ],
    )
    result = {
        "posts": posts,
        "distinct_images": distinct,
        "image_bytes": {"min": sizes[0], "max": sizes[-1], "total": sum(sizes)},
        "concurrency": CONCURRENCY,
        "naive": naive,
        "floor": [floor1, floor2],
        "floor_posts_per_s": floor_rate,
        "service": svc,
        "service_repush": repeat,
        "service_fetches": fetched,
        "repush_fetches": refetched,
        "wordpress_side": phases,
        "service_over_naive": over_naive,
        "service_over_floor": over_floor,
        "service_arm": "prepare_media + a direct post create (the publish task is not merged yet)",
        "targets": {
            "ge_3x_naive": (over_naive or 0) >= 3,
            "ge_0_8_floor": (over_floor or 0) >= 0.8,
            "uploads_eq_distinct": phases["service"]["uploads"] == distinct,
            "rss_growth_lt_50mb": svc["rss_growth_mb"] < 50,
        },
    }
    write_result("publish", result)
    return result


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--service-arm":
        print(json.dumps(service_arm(json.loads(Path(sys.argv[2]).read_text()))))
    else:
        sys.exit("usage: python -m bench.publish --service-arm SPEC.json (run the benchmark with bench.run)")
