"""The pull's lookup of existing rows (issue 13): exactly the site's and type's rows, a plan that
probes the full key once the statistics are refreshed, and the refresh after each stored page."""

from __future__ import annotations

from typing import Any

import pytest

from integration_service.extensions import db
from integration_service.models import Content
from integration_service.platforms.base import PostPage, RemotePost
from integration_service.sync.content_lookup import existing_contents


def test_existing_rows_lookup_finds_exactly_the_site_and_type_rows(factory, site, account):
    other_site = factory.site(account)
    factory.content(site, external_id="1", content_type="post")
    factory.content(site, external_id="2", content_type="page")
    factory.content(other_site, external_id="3", content_type="post")
    db.session.execute(
        db.insert(Content),
        [
            {"site_id": site.id, "content_type": "post", "external_id": str(i), "title": f"t{i}", "source": "wordpress"}
            for i in range(3, 6)
        ],
    )
    db.session.commit()
    found = existing_contents(site.id, "post", ["1", "2", "3", "4", "5", "99"])
    assert sorted(c.external_id for c in found) == ["1", "3", "4", "5"]
    assert all(c.site_id == site.id and c.content_type == "post" for c in found)
    assert all(isinstance(c.meta, dict) and isinstance(c.taxonomies, dict) for c in found)  # column defaults
    assert existing_contents(site.id, "post", []) == []


def _lookup_plan(site_id: int, ids: list[str]) -> str:
    from sqlalchemy.dialects import postgresql

    from integration_service.sync import content_lookup

    captured: list[Any] = []
    original = db.session.scalars

    def capture(statement: Any, *args: Any, **kwargs: Any) -> Any:
        captured.append(statement)
        return original(statement, *args, **kwargs)

    content_lookup.db.session.scalars = capture  # type: ignore[method-assign]
    try:
        existing_contents(site_id, "post", ids)
    finally:
        content_lookup.db.session.scalars = original  # type: ignore[method-assign]
    compiled = captured[0].compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return "\n".join(r[0] for r in db.session.execute(db.text(f"EXPLAIN (ANALYZE, FORMAT TEXT) {compiled}")))


def test_the_pull_refreshes_statistics_so_the_lookup_probes_the_full_key(app, factory, site, monkeypatch):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    from integration_service.sync import content_lookup

    analyzed: list[int] = []
    original = content_lookup.refresh_statistics

    def spy(before: int, now: int) -> None:
        analyzed.append(now)
        original(before, now)

    monkeypatch.setattr(content_lookup, "refresh_statistics", spy)
    # Stale statistics that do not know the new site (other sites' rows were analyzed).
    db.session.execute(db.text("ANALYZE contents"))
    db.session.commit()
    rows = [
        {"site_id": site.id, "content_type": "post", "external_id": str(i), "source": "wordpress"} for i in range(3000)
    ]
    db.session.execute(db.insert(Content), rows)
    db.session.commit()
    content_lookup.refresh_statistics(0, 99)  # below the threshold: nothing
    content_lookup.refresh_statistics(99, 3000)  # crossing it: ANALYZE
    plan = _lookup_plan(site.id, ["5", "2999", "nope"])
    db.session.rollback()
    assert "Rows Removed by Filter" not in plan, plan
    # One probe per id on an index that holds the post id (the full unique key, or the
    # (site_id, external_id) index the webhooks use: post ids are unique across a site's types).
    assert "uq_contents_site_id_content_type_external_id" in plan or "ix_contents_site_external_id" in plan, plan
    assert "external_id)::text = wanted.external_id" in plan, plan


class _Pages:
    """``total`` posts of one type, served from memory."""

    def __init__(self, total: int) -> None:
        self.total = total

    def pages(
        self,
        post_type: str,
        modified_after: Any = None,
        *,
        per_page: int = 100,
        concurrency: int = 1,
        start_page: int = 1,
    ) -> Any:
        pages = -(-self.total // per_page)
        for number in range(start_page, pages + 1):
            first = (number - 1) * per_page
            posts = [
                RemotePost(str(i), post_type, f"t{i}", "<p>x</p>", "publish", None, None)
                for i in range(first + 1, min(first + per_page, self.total) + 1)
            ]
            yield PostPage(posts=posts, total=self.total, total_pages=pages, number=number)


def test_the_pull_calls_refresh_statistics_after_each_stored_page(app, factory, site, monkeypatch):
    from integration_service.sync import engine, pull

    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(pull, "refresh_statistics", lambda before, now: calls.append((before, now)))
    integration = factory.integration(site, config_json={"site_url": site.url, "sync_post_types": ["post"]})
    service = engine.ContentSyncService(
        integration, _Pages(250), engine.SyncCounts(), engine.Progress(lambda d, t: None)
    )
    service.pull(full=True)
    assert calls == [(0, 100), (100, 200), (200, 250)]
    assert db.session.scalar(db.select(db.func.count()).select_from(Content)) == 250
