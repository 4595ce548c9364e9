"""Benchmark 7: PostgreSQL's share of a first full pull, per post, from 1,000 to 50,000 posts.

The service's own pull (``ContentSyncService.pull(full=True)``, the job's storing path: the
lookup of existing rows, the mapping, the multi-row INSERT, the commits) fed by an in-memory
client that serves pages of 100 synthetic posts at once, so only the database side is measured.
Each size pulls a new site into the same database, right after an ``ANALYZE`` of the table: the
statistics exist but know nothing of the new site, as on a real first pull (autovacuum analyzed
the earlier sites' rows, not the ones this pull is writing).

Measured per post: the PostgreSQL statement time (client-side, ``before/after_cursor_execute``
around each statement: the round trip on loopback, mostly the server's time), split into the
lookup of existing rows, the INSERT and the rest; and the ``contents`` rows PostgreSQL read
(``pg_stat_user_tables``: index tuples fetched + sequential tuples read). Cost is linear when the
time per post stays flat as N grows.

``LEGACY_SIZES`` also run the pull as it was before (the ``IN (...)`` lookup, no statistics
refresh), for the before/after table.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from . import common
from .common import log, print_table, write_result

SIZES = [1000, 10000, 50000]
QUICK_SIZES = [200, 1000]
LEGACY_SIZES = [1000, 10000]
PER_PAGE = 100


class MemoryClient:
    """Serves ``total`` synthetic posts of one post type, a page at a time, instantly."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.base = datetime(2026, 1, 1, tzinfo=UTC)

    def pages(
        self,
        post_type: str,
        modified_after: Any = None,
        *,
        per_page: int = PER_PAGE,
        concurrency: int = 1,
        start_page: int = 1,
    ) -> Any:
        """The client's paging primitive (``PlatformClient.pages``), served from memory."""
        for number in range(start_page, max(1, math.ceil(self.total / per_page)) + 1):
            yield self._page(post_type, number, per_page)

    def _page(self, post_type: str, page: int, per_page: int) -> Any:
        from integration_service.platforms.base import PostPage, RemotePost

        first = (page - 1) * per_page
        posts = [
            RemotePost(
                external_id=str(i + 1),
                content_type=post_type,
                title=f"Post {i + 1}",
                content_html=f"<p>Body of post {i + 1}.</p>",
                status="publish",
                url=f"http://wp.invalid/?p={i + 1}",
                modified_gmt=self.base + timedelta(minutes=i),
                taxonomies={"categories": [1], "tags": []},
            )
            for i in range(first, min(first + per_page, self.total))
        ]
        return PostPage(posts=posts, total=self.total, total_pages=math.ceil(self.total / per_page), number=page)


def _legacy_statements() -> Any:
    """The pull's lookup as it was before issue 13 (``external_id IN (...)``, no statistics
    refresh), for the "before" rows. Returns what to restore."""
    from integration_service.extensions import db
    from integration_service.models import Content
    from integration_service.sync import pull as sync_pull

    def existing(site_id: int, content_type: str, ids: list[str]) -> list[Any]:
        return list(
            db.session.scalars(
                db.select(Content).where(
                    Content.site_id == site_id, Content.content_type == content_type, Content.external_id.in_(ids)
                )
            )
        )

    saved = (sync_pull.existing_contents, sync_pull.refresh_statistics)
    sync_pull.existing_contents = existing
    sync_pull.refresh_statistics = lambda before, now: None
    return saved


def _contents_rows_read(conn: Any) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) FROM pg_stat_user_tables"
        " WHERE relname = 'contents'"
    ).fetchone()
    return int(row[0]) if row else 0


def pull_once(n: int, legacy: bool, fresh_database: bool) -> dict[str, Any]:
    from sqlalchemy import event

    from integration_service.extensions import db
    from integration_service.models import SiteIntegration
    from integration_service.sync import engine as sync_engine
    from integration_service.sync import pull as sync_pull

    if fresh_database:
        common.reset_database()
    with common.pg_connect() as conn:
        # As after earlier pulls: the table has statistics, and none of them know the new site.
        conn.execute("ANALYZE contents")
        conn.commit()
    app = common.bench_app()
    tenant = common.create_tenant(app, ["http://wp.invalid"], name=f"pullpg{n}")
    timings: dict[str, float] = {"lookup": 0.0, "insert": 0.0, "other": 0.0}
    counts: dict[str, int] = {"lookup": 0, "insert": 0, "other": 0}
    saved = _legacy_statements() if legacy else None
    try:
        with app.app_context():
            integration = SiteIntegration(
                site_id=tenant.sites[0]["id"],
                platform="wordpress",
                platform_type="cms",
                config_json={"site_url": "http://wp.invalid", "sync_post_types": ["post"]},
                credentials_json={"username": "admin", "app_password": "unused"},
            )
            db.session.add(integration)
            db.session.commit()
            engine = db.engine

            def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
                conn.info["bench_t0"] = time.perf_counter()

            def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
                elapsed = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
                head = statement.lstrip()[:200].upper()
                kind = (
                    "insert"
                    if head.startswith("INSERT INTO CONTENTS")
                    else "lookup"
                    if head.startswith("SELECT") and "FROM CONTENTS" in statement.upper()[:2000]
                    else "other"
                )
                timings[kind] += elapsed
                counts[kind] += 1

            with common.pg_connect() as stats:
                stats.autocommit = True
                rows_before = _contents_rows_read(stats)
                event.listen(engine, "before_cursor_execute", before)
                event.listen(engine, "after_cursor_execute", after)
                t0 = time.perf_counter()
                try:
                    service = sync_engine.ContentSyncService(
                        integration,
                        MemoryClient(n),
                        sync_engine.SyncCounts(),
                        sync_engine.Progress(lambda done, total: None),
                    )
                    service.pull(full=True)
                finally:
                    event.remove(engine, "before_cursor_execute", before)
                    event.remove(engine, "after_cursor_execute", after)
                wall = time.perf_counter() - t0
                # A backend flushes its table counters when idle for a while or when it exits:
                # close the pull's connections so the counts below are complete.
                db.session.remove()
                engine.dispose()
                time.sleep(0.5)
                rows_read = _contents_rows_read(stats) - rows_before
                stored = stats.execute(
                    "SELECT count(*) FROM contents WHERE site_id = %s", (tenant.sites[0]["id"],)
                ).fetchone()[0]
    finally:
        if saved is not None:
            sync_pull.existing_contents, sync_pull.refresh_statistics = saved
    total = sum(timings.values())
    return {
        "n": n,
        "legacy": legacy,
        "stored": stored,
        "wall_s": wall,
        "pg_s": total,
        "pg_ms_per_post": 1000 * total / n,
        "lookup_ms_per_post": 1000 * timings["lookup"] / n,
        "insert_ms_per_post": 1000 * timings["insert"] / n,
        "other_ms_per_post": 1000 * timings["other"] / n,
        "statements": counts,
        "contents_rows_read_per_post": rows_read / n,
        "posts_per_s": n / wall if wall else None,
    }


def run(quick: bool) -> dict[str, Any]:
    sizes = QUICK_SIZES if quick else SIZES
    legacy_sizes = [] if quick else LEGACY_SIZES
    results = []
    for legacy, group in ((True, legacy_sizes), (False, sizes)):
        for index, n in enumerate(group):
            log(f"pull_pg: N={n} ({'before: IN (...) lookup, no ANALYZE' if legacy else 'current'})")
            results.append(pull_once(n, legacy, fresh_database=index == 0))
    current = [r for r in results if not r["legacy"]]
    growth = current[-1]["pg_ms_per_post"] / current[0]["pg_ms_per_post"] if current[0]["pg_ms_per_post"] else None
    print_table(
        "PostgreSQL time per post in a first full pull (in-memory pages of 100; a new site per row)",
        [
            "statements",
            "N",
            "stored",
            "PG ms/post",
            "lookup ms/post",
            "INSERT ms/post",
            "other ms/post",
            "contents rows read/post",
            "job posts/s",
        ],
        [
            [
                "before (IN, no ANALYZE)" if r["legacy"] else "current",
                r["n"],
                r["stored"],
                r["pg_ms_per_post"],
                r["lookup_ms_per_post"],
                r["insert_ms_per_post"],
                r["other_ms_per_post"],
                r["contents_rows_read_per_post"],
                r["posts_per_s"],
            ]
            for r in results
        ],
    )
    log(f"PG time per post, N={current[-1]['n']} / N={current[0]['n']}: {growth:.2f}x (target: within 1.5x)")
    result = {
        "sizes": sizes,
        "results": results,
        "pg_per_post_growth": growth,
        "targets": {"pg_per_post_flat_within_1_5x": growth is not None and growth <= 1.5},
    }
    write_result("pull_pg", result)
    return result
