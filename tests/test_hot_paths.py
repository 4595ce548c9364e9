"""The cheap request paths of issue 13: what a webhook delivery and a sync_status poll cost in
statements, decryptions and Redis round trips, and what
happens when a pooled connection died while idle (no pre-ping any more)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy import event

from integration_service.crypto import SecretBox
from integration_service.extensions import db
from integration_service.models import Content, SyncEvent, WebhookDelivery
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


@pytest.mark.parametrize("with_type", [True, False], ids=["post_type given", "no post_type"])
def test_a_delivery_finds_its_content_by_post_id_without_reading_the_sites_other_rows(app, factory, site, with_type):
    """The lookup by WordPress post id probes (site_id, external_id); before that index it read
    every content row of the site (or the whole table) on each delivery."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    from sqlalchemy.dialects import postgresql

    from integration_service.services import webhooks

    rows = [
        {"site_id": site.id, "content_type": "post", "external_id": str(i), "source": "wordpress"} for i in range(3000)
    ]
    db.session.execute(db.insert(Content), rows)
    db.session.commit()
    db.session.execute(db.text("ANALYZE contents"))
    query = webhooks._BY_POST_OF_TYPE if with_type else webhooks._BY_POST
    params = {"site_id": site.id, "post_id": "2999", "post_type": "post"}
    compiled = query.compile(dialect=postgresql.dialect())
    explain = db.session.connection().exec_driver_sql(
        f"EXPLAIN (ANALYZE, FORMAT TEXT) {compiled}", {**compiled.params, **params}
    )
    plan = "\n".join(r[0] for r in explain)
    db.session.rollback()
    assert "ix_contents_site_external_id" in plan, plan
    assert "Rows Removed by Filter" not in plan and "Seq Scan on contents" not in plan, plan


def test_sync_status_does_not_decrypt_credentials(api_client_for, factory, account, site, decryptions):
    integration_id = factory.integration(site).id
    viewer = api_client_for(factory.user(account, role="viewer"))
    db.session.expunge_all()  # nothing of the test's own objects in the request's session
    decryptions.clear()
    response = viewer.get(f"/api/v1/integration/integrations/{integration_id}/sync_status/")
    assert response.status_code == 200
    assert decryptions == []


def test_a_job_finishing_between_the_poll_statements_never_reads_syncing_without_a_job(
    app, api_client_for, factory, account, site
):
    """The finish (event + integration, one transaction) commits from another connection right
    after the poll's first statement: the poll must not see the job gone while the integration
    still says syncing (what a poller waiting for ``current_job: null`` reads as the outcome)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs a second connection committing mid-request")
    integration = factory.integration(site, sync_status="syncing")
    job = SyncEvent(
        integration_id=integration.id,
        site_id=site.id,
        event_type="sync",
        action="sync",
        direction="both",
        status="running",
        sync_lock=integration.id,
        task_id="t-1",
    )
    db.session.add(job)
    db.session.commit()
    integration_id, job_id = integration.id, job.id
    viewer = api_client_for(factory.user(account, role="viewer"))
    db.session.expunge_all()
    finished: list[bool] = []

    def finish_after_first_select(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if finished or not statement.lstrip().upper().startswith("SELECT"):
            return
        if "sync_events" not in statement and "site_integrations" not in statement:
            return
        finished.append(True)
        with db.engine.connect() as other:
            other.execute(
                db.text("UPDATE sync_events SET status = 'success', sync_lock = NULL WHERE id = :id"), {"id": job_id}
            )
            other.execute(
                db.text("UPDATE site_integrations SET sync_status = 'success' WHERE id = :id"), {"id": integration_id}
            )
            other.commit()

    event.listen(db.engine, "after_cursor_execute", finish_after_first_select)
    try:
        body = viewer.get(f"/api/v1/integration/integrations/{integration_id}/sync_status/").get_json()
    finally:
        event.remove(db.engine, "after_cursor_execute", finish_after_first_select)
    assert finished
    assert not (body["current_job"] is None and body["sync_status"] == "syncing"), body


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


def test_a_connection_lost_while_idle_is_replaced_before_use(app, api_client_for, factory, account, caplog):
    """Issue 20 item 3: a pooled connection the server closed is found at checkout (dbpool.py)
    and replaced, so the request it would have served does not fail."""
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
                # With a timeout, pg_terminate_backend waits until each backend has exited (PG 14+),
                # so the pooled sockets already hold the server's end-of-file when the request
                # comes: without it the request could race the backends' exit.
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    assert own is not None
    with caplog.at_level("INFO", logger="integration_service.dbpool"):
        after = viewer.get(url)
    assert after.status_code == 200, after.get_data(as_text=True)
    assert "closed by the server; replacing it" in caplog.text  # it was dead, and was replaced
    assert viewer.get(url).status_code == 200


def test_no_cookie_session_is_read_or_written(app, client):
    from flask import session
    from flask.sessions import NullSession

    client.set_cookie("session", "eyJ4IjoxfQ.forged")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    with app.test_request_context(headers={"Cookie": "session=eyJ4IjoxfQ.forged"}):
        assert isinstance(session._get_current_object(), NullSession)
        assert dict(session) == {}
