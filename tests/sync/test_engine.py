"""The sync engine against a faked WordPress: each direction's counts, incremental and full
pulls, pagination, missing posts, conflicts and partial jobs."""

from __future__ import annotations

from flask import current_app

from integration_service.extensions import db
from integration_service.models import Content, SiteIntegration, SyncEvent
from integration_service.sync import runner
from integration_service.sync.engine import content_hash, hash_of
from tests.factories import Factory


def run(integration: SiteIntegration, direction: str = "from_external", full: bool = False) -> SyncEvent:
    event = Factory(current_app).queued_sync(integration, direction, full)
    runner.run(runner.SyncJob, event.id, event.task_id, 0, 0)
    db.session.expire_all()
    return db.session.get(SyncEvent, event.id)


def contents(site_id: int) -> list[Content]:
    return db.session.scalars(db.select(Content).where(Content.site_id == site_id).order_by(Content.id)).all()


def test_from_external_creates_then_reports_unchanged(fake_wp, wp_integration):
    fake_wp.add_posts(3)
    fake_wp.add_post(post_type="page", title="About")

    first = run(wp_integration)
    assert first.status == "success", first.error_message
    assert (first.details["created"], first.details["updated"], first.details["errors"]) == (4, 0, 0)
    assert first.sync_lock is None and first.finished_at is not None
    rows = contents(wp_integration.site_id)
    assert sorted((row.content_type, row.external_id) for row in rows) == [
        ("page", "4"),
        ("post", "1"),
        ("post", "2"),
        ("post", "3"),
    ]
    page = next(row for row in rows if row.content_type == "page")
    assert (page.title, page.status, page.source, page.external_status) == (
        "About",
        "published",
        "wordpress",
        "publish",
    )
    assert rows[0].taxonomies == {"categories": [1], "tags": []}

    second = run(wp_integration)
    assert second.status == "success"
    assert (second.details["created"], second.details["updated"]) == (0, 0)
    assert len(contents(wp_integration.site_id)) == 4
    integration = db.session.get(SiteIntegration, wp_integration.id)
    assert integration.sync_status == "success" and integration.last_sync_at is not None
    assert integration.last_pull_modified_gmt is not None


def test_incremental_pull_requests_only_changed_posts(fake_wp, wp_integration):
    fake_wp.add_posts(30)
    run(wp_integration)
    fake_wp.tick(3600)
    fake_wp.edit_post(5, title="Edited in WordPress")
    fake_wp.requests.clear()

    event = run(wp_integration)

    listing = fake_wp.list_requests("posts")
    assert listing and all("modified_after" in request["query"] for request in listing)
    assert event.details["updated"] == 1 and event.details["created"] == 0
    # Only the edited post and the two inside the re-read overlap came back, not all 30.
    assert event.progress_total == 3 and event.details["unchanged"] == 2
    assert event.details["incremental"]["post"] is True
    row = db.session.scalar(db.select(Content).where(Content.external_id == "5"))
    assert row.title == "Edited in WordPress"


def test_pagination_across_many_pages_with_bounded_concurrency(app, fake_wp, wp_integration, monkeypatch):
    monkeypatch.setitem(app.config, "WP_CONCURRENCY", 3)
    fake_wp.add_posts(730)

    event = run(wp_integration)

    assert event.status == "success"
    assert event.details["created"] == 730
    assert (event.progress_done, event.progress_total) == (730, 730)
    pages = sorted(int(request["query"]["page"]) for request in fake_wp.list_requests("posts"))
    assert pages == [1, 2, 3, 4, 5, 6, 7, 8]
    assert all(request["query"]["per_page"] == "100" for request in fake_wp.list_requests("posts"))
    assert db.session.scalar(db.select(db.func.count(Content.id))) == 730


def test_full_pull_marks_deleted_posts_missing_and_incremental_does_not(fake_wp, wp_integration):
    fake_wp.add_posts(4)
    run(wp_integration)
    fake_wp.delete_post(2)

    incremental = run(wp_integration)
    assert incremental.details["missing"] == 0

    full = run(wp_integration, full=True)
    assert full.status == "success"
    assert full.details["missing"] == 1
    assert full.details["unchanged"] == 3
    states = {row.external_id: row.external_status for row in contents(wp_integration.site_id)}
    assert states == {"1": "publish", "2": "missing", "3": "publish", "4": "publish"}
    assert run(wp_integration, full=True).details["missing"] == 0  # already marked


def test_unstable_paging_is_reported_and_marks_nothing_missing(fake_wp, wp_integration):
    fake_wp.add_posts(250, same_time=True)
    assert run(wp_integration).status == "success"  # a stable listing: all 250 stored
    fake_wp.unstable_ties = True  # equal modified times come back in a different order per page

    event = run(wp_integration, full=True)

    assert event.status == "partial"
    assert "twice while paging" in event.details["failed_items"][0]["error"]
    assert event.details["missing"] == 0  # posts skipped by the listing are not "missing"
    assert {row.external_status for row in contents(wp_integration.site_id)} == {"publish"}


def test_full_scan_fallback_without_modified_after(fake_wp, wp_integration):
    fake_wp.supports_modified_after = False  # WordPress < 5.7 ignores the parameter
    fake_wp.add_posts(5)
    run(wp_integration)
    fake_wp.tick(3600)
    fake_wp.edit_post(3, title="Changed")

    event = run(wp_integration)

    assert (event.details["updated"], event.details["unchanged"], event.details["created"]) == (1, 4, 0)


def test_one_malformed_post_makes_the_job_partial_and_names_it(fake_wp, wp_integration):
    fake_wp.add_posts(3)
    fake_wp.malformed_ids.add(2)

    event = run(wp_integration)

    assert event.status == "partial"
    assert event.details["created"] == 2 and event.details["errors"] == 1
    failed = event.details["failed_items"][0]
    assert failed["content_type"] == "post" and "malformed" in failed["error"]
    assert "post" in event.error_message
    integration = db.session.get(SiteIntegration, wp_integration.id)
    # sync_error only ever stands beside "failed"; the partial job's event names the failed items.
    assert integration.sync_status == "success" and integration.sync_error is None
    # A partial pull does not advance the high-water mark: the bad post is read again next time.
    assert not (integration.pull_watermarks or {}).get("post")


def test_to_external_pushes_new_and_changed_content(factory, fake_wp, wp_integration, site):
    published = factory.content(site, title="Launch", status="published", taxonomies={"categories": [3], "tags": [7]})
    review = factory.content(site, title="Draft for review", status="review", content_type="page")
    factory.content(site, title="Private draft", status="draft")

    event = run(wp_integration, "to_external")

    assert event.status == "success", event.error_message
    assert event.details["pushed"] == 2
    db.session.refresh(published)
    remote = fake_wp.posts[int(published.external_id)]
    assert (remote["title"], remote["status"], remote["type"]) == ("Launch", "publish", "post")
    assert (remote["categories"], remote["tags"]) == ([3], [7])
    assert remote["meta"]["_igny8_content_id"] == published.id
    assert published.external_status == "publish" and published.external_url
    assert published.synced_hash == hash_of(published)
    db.session.refresh(review)
    assert fake_wp.posts[int(review.external_id)]["status"] == "pending"
    assert fake_wp.posts[int(review.external_id)]["type"] == "page"

    again = run(wp_integration, "to_external")
    assert (again.details["pushed"], again.details["unchanged"]) == (0, 2)

    published.title = "Launch, updated"
    db.session.commit()
    third = run(wp_integration, "to_external")
    assert third.details["pushed"] == 1
    assert fake_wp.posts[int(published.external_id)]["title"] == "Launch, updated"
    assert len(fake_wp.posts) == 2  # updated in place, not created again


def test_both_detects_conflicts_and_overwrites_neither_side(fake_wp, wp_integration, site):
    fake_wp.add_posts(2)
    run(wp_integration)
    row = db.session.scalar(db.select(Content).where(Content.external_id == "1"))
    row.title = "Edited on the platform"
    row.status = "published"
    db.session.commit()
    fake_wp.tick(3600)
    fake_wp.edit_post(1, title="Edited in WordPress")
    other = db.session.scalar(db.select(Content).where(Content.external_id == "2"))
    other.title = "Only the platform changed this"
    db.session.commit()

    event = run(wp_integration, "both")

    assert event.status == "success"
    assert event.details["conflicts"] == 1
    assert event.details["conflict_items"][0]["content_id"] == row.id
    assert event.details["pushed"] == 1  # post 2 only
    db.session.refresh(row)
    assert row.title == "Edited on the platform"
    assert row.conflict and row.conflict["remote_title"] == "Edited in WordPress"
    assert fake_wp.posts[1]["title"] == "Edited in WordPress"
    assert fake_wp.posts[2]["title"] == "Only the platform changed this"

    # Still unresolved on the next sync: counted again, still not overwritten.
    assert run(wp_integration, "both").details["conflicts"] == 1
    assert fake_wp.posts[1]["title"] == "Edited in WordPress"


def test_metadata_sync_stores_structure_and_touches_no_content(fake_wp, wp_integration):
    fake_wp.add_posts(2)

    event = run(wp_integration, "metadata")

    assert event.status == "success"
    assert event.details["post_types"] == 3 and event.details["taxonomies"] == 2
    integration = db.session.get(SiteIntegration, wp_integration.id)
    stored = integration.config_json["content_types"]
    assert set(stored["post_types"]) == {"post", "page", "attachment"}
    assert stored["post_types"]["post"]["rest_base"] == "posts"
    assert set(stored["taxonomies"]) == {"category", "post_tag"}
    assert stored["last_structure_fetch"]
    assert integration.config_json["site_url"] == fake_wp.url
    assert contents(wp_integration.site_id) == []
    assert fake_wp.list_requests("posts") == []


def test_selected_post_types_come_from_the_config(fake_wp, factory, site):
    from tests.workers.fakewp import make_integration

    integration = make_integration(factory, site, fake_wp.url)
    integration.config_json = {**integration.config_json, "sync_post_types": ["page"]}
    db.session.commit()
    fake_wp.add_posts(2)
    fake_wp.add_post(post_type="page")

    event = run(integration)

    assert event.details["created"] == 1
    assert fake_wp.list_requests("posts") == []


def test_auth_error_fails_the_job_with_a_message_and_no_secret(fake_wp, wp_integration):
    fake_wp.auth_status = 401
    event = run(wp_integration)
    assert event.status == "failed"
    assert "auth" in event.error_message
    assert "abcd" not in event.error_message
    integration = db.session.get(SiteIntegration, wp_integration.id)
    assert integration.sync_status == "failed" and integration.sync_error == event.error_message


def test_content_hash_ignores_nothing_that_a_push_sends():
    base = content_hash("T", "<p>x</p>", "published", {"tags": [1]})
    assert base != content_hash("T2", "<p>x</p>", "published", {"tags": [1]})
    assert base != content_hash("T", "<p>y</p>", "published", {"tags": [1]})
    assert base != content_hash("T", "<p>x</p>", "review", {"tags": [1]})
    assert base != content_hash("T", "<p>x</p>", "published", {"tags": [2]})


# -- ownership and stuck jobs -------------------------------------------------------------


def test_progress_reports_at_most_once_per_interval_and_always_when_complete():
    from integration_service.sync.engine import Progress

    reports: list[tuple[int, int | None]] = []
    progress = Progress(lambda done, total: reports.append((done, total)), min_interval=3600)
    progress.add_total(300)
    for _ in range(3):
        progress.advance(100)
        progress.report()
    # The first page reports (a heartbeat right away), the second is within the interval, the last completes.
    assert reports == [(100, 300), (300, 300)]
