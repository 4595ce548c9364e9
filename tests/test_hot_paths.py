"""The cheap request paths of issue 13: what a webhook delivery and a sync_status poll cost in
statements, decryptions and Redis round trips, the pull's lookup of existing rows, and what
happens when a pooled connection died while idle (no pre-ping any more)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from sqlalchemy import event

from integration_service.crypto import SecretBox
from integration_service.extensions import db
from integration_service.models import Content, SyncEvent, WebhookDelivery
from integration_service.services.content_lookup import existing_contents
from tests.api.test_webhooks import deliver

STATUS = "/api/v1/integration/webhooks/wordpress/status/"


@pytest.fixture
def statements(app):
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def decryptions(monkeypatch):
    calls: list[int] = []
    original = SecretBox.decrypt

    def counting(self: SecretBox, token: str) -> str:
        calls.append(1)
        return original(self, token)

    monkeypatch.setattr(SecretBox, "decrypt", counting)
    return calls


def test_a_delivery_decrypts_the_site_key_once_and_sends_few_statements(client, factory, site, statements, decryptions):
    factory.integration(site)
    content = factory.content(site, external_id="42", content_type="post", external_status="draft")
    statements.clear()
    decryptions.clear()
    response = deliver(client, STATUS, site.plain_api_key, {"post_id": 42, "post_status": "publish"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "applied"
    # The key (auth + signature) is decrypted once; the integration's credentials never.
    assert len(decryptions) == 1
    sql = [s for s in statements if s not in ("BEGIN", "SAVEPOINT", "RELEASE")]
    # site+account; content FOR UPDATE with the integration; delivery INSERT; last_webhook_at
    # UPDATE (first delivery of the minute); content UPDATE; event INSERT (then the commit).
    assert sql == ["SELECT", "SELECT", "INSERT", "UPDATE", "UPDATE", "INSERT"], sql
    db.session.expire_all()
    assert db.session.get(Content, content.id).external_status == "publish"
    assert db.session.scalar(db.select(db.func.count()).select_from(WebhookDelivery)) == 1
    assert [e.details["outcome"] for e in db.session.scalars(db.select(SyncEvent))] == ["applied"]


def test_a_replayed_delivery_is_still_a_duplicate_and_applies_nothing(client, factory, site):
    factory.integration(site)
    content = factory.content(site, external_id="42", content_type="post", external_status="draft")
    first = deliver(client, STATUS, site.plain_api_key, {"post_id": 42, "post_status": "publish"}, webhook_id="msg_1")
    again = deliver(client, STATUS, site.plain_api_key, {"post_id": 42, "post_status": "trash"}, webhook_id="msg_1")
    assert first.get_json()["status"] == "applied"
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    assert again.get_json()["sync_event_id"] is not None
    db.session.expire_all()
    assert db.session.get(Content, content.id).external_status == "publish"


def test_sync_status_does_not_decrypt_credentials(api_client_for, factory, account, site, decryptions):
    integration_id = factory.integration(site).id
    viewer = api_client_for(factory.user(account, role="viewer"))
    db.session.expunge_all()  # nothing of the test's own objects in the request's session
    decryptions.clear()
    response = viewer.get(f"/api/v1/integration/integrations/{integration_id}/sync_status/")
    assert response.status_code == 200
    assert decryptions == []


def test_limiter_headers_come_from_the_hit(editor_client, app, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_INTEGRATION", "3/minute")
    answers = [editor_client.get("/api/v1/integration/integrations/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
    assert int(answers[3].headers["Retry-After"]) >= 1


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs Redis (TEST_REDIS_URL)")
def test_the_redis_strategy_counts_and_reports_in_one_round_trip(monkeypatch):
    import redis
    from limits import parse
    from limits.storage import storage_from_string

    from integration_service.ratelimit import OneTripFixedWindowRateLimiter

    storage = storage_from_string(os.environ["TEST_REDIS_URL"])
    storage.clear(parse("2/minute").key_for("hot-path-test"))
    strategy = OneTripFixedWindowRateLimiter(storage)
    item = parse("2/minute")
    calls: list[Any] = []
    original = redis.Redis.execute_command

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "execute_command", counting)
    from flask import Flask

    with Flask(__name__).test_request_context():
        assert strategy.hit(item, "hot-path-test")
        reset, remaining = strategy.get_window_stats(item, "hot-path-test")
        assert remaining == 1 and reset > 0
        assert len(calls) == 1, calls  # one EVALSHA: the count and its TTL together
        assert strategy.hit(item, "hot-path-test")
        assert not strategy.hit(item, "hot-path-test")
        assert strategy.get_window_stats(item, "hot-path-test")[1] == 0


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

    from integration_service.services import content_lookup

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
    from integration_service.services import content_lookup

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
    assert "uq_contents_site_id_content_type_external_id" in plan, plan


class _Pages:
    """``total`` posts of one type, served from memory."""

    def __init__(self, total: int) -> None:
        self.total = total

    def list_posts(self, post_type: str, page: int, per_page: int = 100, modified_after: Any = None) -> Any:
        from integration_service.platforms.base import PostPage, RemotePost

        first = (page - 1) * per_page
        posts = [
            RemotePost(str(i), post_type, f"t{i}", "<p>x</p>", "publish", None, None)
            for i in range(first + 1, min(first + per_page, self.total) + 1)
        ]
        return PostPage(posts=posts, total=self.total, total_pages=-(-self.total // per_page))


def test_the_pull_calls_refresh_statistics_after_each_stored_page(app, factory, site, monkeypatch):
    from integration_service.services import content_sync

    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(content_sync, "refresh_statistics", lambda before, now: calls.append((before, now)))
    integration = factory.integration(site, config_json={"site_url": site.url, "sync_post_types": ["post"]})
    service = content_sync.ContentSyncService(
        integration, _Pages(250), content_sync.SyncCounts(), content_sync.Progress(lambda d, t: None)
    )
    service.pull(full=True)
    assert calls == [(0, 100), (100, 200), (200, 250)]
    assert db.session.scalar(db.select(db.func.count()).select_from(Content)) == 250


def test_a_connection_lost_while_idle_answers_503_then_the_next_request_works(app, api_client_for, factory, account):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL backends to terminate")
    viewer = api_client_for(factory.user(account, role="viewer"))
    url = "/api/v1/integration/integrations/"
    assert viewer.get(url).status_code == 200
    db.session.remove()  # the test's own session holds no connection: only the pool does
    # Kill every pooled connection of this test database from outside (a restart, a proxy timeout).
    with db.engine.connect() as conn:
        own = conn.execute(db.text("SELECT pg_backend_pid()")).scalar()
    with app.app_context():
        import psycopg

        url_admin = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url_admin, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    assert own is not None
    lost = viewer.get(url)
    assert lost.status_code == 503, lost.get_data(as_text=True)
    body = lost.get_json()
    assert body["error"]["code"] == "database_unavailable" and body["request_id"]
    assert viewer.get(url).status_code == 200
    assert json.dumps(body).count("Traceback") == 0
