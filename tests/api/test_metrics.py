"""GET /metrics: Prometheus text format with jobs by state (read from the database), job
durations and scheduler lag, per-site 429s and webhook deliveries by outcome; token access;
the Redis-backed store that makes worker-side counters visible to any web process."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from integration_service import metrics
from integration_service.models import utcnow
from integration_service.sync import schedule
from tests.workers.fakewp import make_integration

URL = "/metrics"


@pytest.fixture(autouse=True)
def fresh_metrics():
    metrics.store().clear()
    yield
    metrics.store().clear()


def scrape(client, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple], float]:
    response = client.get(URL, headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=")  # the Prometheus text format
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def key(name: str, **labels: str) -> tuple[str, tuple]:
    return name, tuple(sorted(labels.items()))


def test_jobs_by_state_come_from_the_database(client, factory, site):
    integration = factory.integration(site)
    factory.queued_sync(integration)
    samples = scrape(client)
    assert samples[("integration_jobs", (("event_type", "sync"), ("state", "queued")))] == 1
    assert samples[("integration_jobs", (("event_type", "sync"), ("state", "running")))] == 0
    assert samples[("integration_scheduler_due", ())] == 0


def test_a_scheduled_sync_shows_in_durations_lag_and_dispatch_counts(client, factory, fake_wp):
    fake_wp.add_posts(2)
    site = factory.site(url=fake_wp.url)
    make_integration(
        factory, site, fake_wp.url, sync_interval_minutes=15, next_sync_at=utcnow() - timedelta(seconds=30)
    )
    assert scrape(client)[("integration_scheduler_due", ())] == 1

    schedule.dispatch_due()

    samples = scrape(client)
    labels = (("status", "success"), ("trigger", "scheduled"))
    assert samples[("integration_sync_jobs_finished_total", labels)] == 1
    assert samples[("integration_sync_job_duration_seconds_count", labels)] == 1
    assert samples[key("integration_sync_job_duration_seconds_bucket", **dict(labels), le="+Inf")] == 1
    # Due 30 s before the dispatch: the lag is at least that, and lands in the (10, 30] or (30, 60] bucket.
    assert samples[("integration_scheduler_lag_seconds_count", ())] == 1
    assert samples[("integration_scheduler_lag_seconds_sum", ())] >= 30
    assert samples[("integration_scheduler_lag_seconds_bucket", (("le", "10.0"),))] == 0
    assert samples[("integration_scheduler_lag_seconds_bucket", (("le", "60.0"),))] == 1
    assert samples[("integration_scheduler_dispatched_total", (("kind", "incremental"),))] == 1
    assert samples[("integration_scheduler_due", ())] == 0


def test_per_site_429s_are_counted_by_site_id_only(client):
    metrics.record_rate_limited(7)
    metrics.record_rate_limited(7)
    metrics.record_rate_limited(9)
    samples = scrape(client)
    assert samples[("integration_site_rate_limited_total", (("site_id", "7"),))] == 2
    assert samples[("integration_site_rate_limited_total", (("site_id", "9"),))] == 1


def test_a_site_answering_429_is_counted_under_its_site_id_not_its_host(client, factory, site):
    import responses

    from integration_service.platforms.registry import client_for

    integration = make_integration(factory, site, "http://127.0.0.1:8999")
    with responses.RequestsMock() as mocked, client_for(integration) as wp:
        mocked.get("http://127.0.0.1:8999/wp-json/", status=429, headers={"Retry-After": "0"})
        mocked.get("http://127.0.0.1:8999/wp-json/", status=503)  # no Retry-After: just down, not counted
        mocked.get("http://127.0.0.1:8999/wp-json/", status=429)  # counted with or without Retry-After
        wp.http.request("GET", "http://127.0.0.1:8999/wp-json/", retry=False)
        wp.http.request("GET", "http://127.0.0.1:8999/wp-json/", retry=False)
        wp.http.request("GET", "http://127.0.0.1:8999/wp-json/", retry=False)
    text = client.get(URL).get_data(as_text=True)
    samples = scrape(client)
    assert samples[("integration_site_rate_limited_total", (("site_id", str(site.id)),))] == 2
    assert "127.0.0.1" not in text


def test_webhook_deliveries_are_counted_by_outcome(client, factory, site):
    from tests.api.test_webhooks import STATUS, deliver, status_payload

    factory.integration(site)
    content = factory.content(site, external_id="7")
    assert deliver(client, STATUS, site.plain_api_key, status_payload(content)).status_code == 200
    refused = deliver(client, STATUS, site.plain_api_key, status_payload(content), headers={"webhook-signature": "v1"})
    assert refused.status_code == 401
    samples = scrape(client)
    assert samples[("integration_webhook_deliveries_total", (("kind", "status"), ("outcome", "applied")))] == 1
    outcome = (("kind", "status"), ("outcome", "not_authenticated"))
    assert samples[("integration_webhook_deliveries_total", outcome)] == 1


def test_labels_carry_no_names(client, factory):
    account = factory.account(name="Secret Customer Inc")
    integration = factory.integration(factory.site(account))
    factory.queued_sync(integration)
    metrics.record_rate_limited(integration.site_id)
    text = client.get(URL).get_data(as_text=True)
    assert "Secret Customer" not in text and "blog.example.com" not in text


def test_a_metrics_token_is_required_when_set(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-token-0123456789")
    response = client.get(URL)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "not_authenticated"
    assert client.get(URL, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert scrape(client, {"Authorization": "Bearer scrape-token-0123456789"})


def test_production_without_a_token_does_not_publish_metrics(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    monkeypatch.setitem(app.config, "METRICS_TOKEN", None)
    response = client.get(URL)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_counters_recorded_in_redis_are_seen_by_any_process(app, client, monkeypatch, redis_url):
    if not redis_url:
        pytest.skip("needs TEST_REDIS_URL")
    monkeypatch.setitem(app.config, "METRICS_REDIS_URL", redis_url)
    metrics.store().clear()
    metrics.record_rate_limited(3)
    metrics.observe_job("manual", "failed", 2.0)
    # A separate store object on the same Redis (another process, as far as the values go).
    other = metrics.RedisStore(redis_url)
    [rate_limited] = other.read([metrics.KEY_PREFIX + metrics.RATE_LIMITED.name])
    assert rate_limited == {'["3"]': 1.0}
    samples = scrape(client)
    assert samples[("integration_site_rate_limited_total", (("site_id", "3"),))] == 1
    labels = (("status", "failed"), ("trigger", "manual"))
    assert samples[("integration_sync_job_duration_seconds_sum", labels)] == 2.0
    assert samples[key("integration_sync_job_duration_seconds_bucket", **dict(labels), le="1.0")] == 0
    assert samples[key("integration_sync_job_duration_seconds_bucket", **dict(labels), le="2.5")] == 1


def _deliveries(redis_store: metrics.RedisStore) -> dict[str, float]:
    [values] = redis_store.read([metrics.KEY_PREFIX + metrics.WEBHOOK_DELIVERIES.name])
    return values


def test_webhook_counts_reach_redis_within_the_flush_interval_summed(app, monkeypatch, redis_url):
    if not redis_url:
        pytest.skip("needs TEST_REDIS_URL")
    own = metrics.RedisStore(redis_url, flush_seconds=0.2)
    other = metrics.RedisStore(redis_url)  # another process's view (its read flushes only its own)
    own.clear()
    sends = []
    original = own.increment
    monkeypatch.setattr(own, "increment", lambda increments: sends.append(increments) or original(increments))
    field = '["status", "applied"]'
    for _ in range(5):
        own.increment_soon([(metrics.KEY_PREFIX + metrics.WEBHOOK_DELIVERIES.name, field, 1.0)])
    assert _deliveries(other) == {}  # nothing sent yet: no round trip per delivery
    deadline = time.monotonic() + 5
    while not _deliveries(other) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _deliveries(other) == {field: 5.0}
    assert len(sends) == 1 and len(sends[0]) == 1  # five deliveries, one summed increment


def test_a_scrape_includes_this_process_s_pending_webhook_counts(app, client, monkeypatch, redis_url):
    if not redis_url:
        pytest.skip("needs TEST_REDIS_URL")
    monkeypatch.setitem(app.config, "METRICS_REDIS_URL", redis_url)
    monkeypatch.setitem(app.config, "METRICS_FLUSH_SECONDS", 60.0)
    metrics._redis_stores.pop(redis_url, None)  # built anew with the long interval
    metrics.store().clear()
    with app.test_request_context():
        metrics.record_webhook_delivery("status", "duplicate")
    assert _deliveries(metrics.RedisStore(redis_url)) == {}
    assert scrape(client)[key("integration_webhook_deliveries_total", kind="status", outcome="duplicate")] == 1
    metrics._redis_stores.pop(redis_url, None)


def test_a_forked_child_does_not_send_its_parent_s_pending_counts(app, redis_url):
    if not redis_url:
        pytest.skip("needs TEST_REDIS_URL")
    parent = metrics.RedisStore(redis_url, flush_seconds=60.0)
    saved = metrics._redis_stores.get(redis_url)
    metrics._redis_stores[redis_url] = parent  # the store flush_pending (and the fork hook) see
    parent.clear()
    field = '["metadata", "applied"]'
    parent.increment_soon([(metrics.KEY_PREFIX + metrics.WEBHOOK_DELIVERIES.name, field, 1.0)])
    pid = os.fork()
    if pid == 0:  # the child: what it flushes must not include the parent's pending count
        metrics.flush_pending()
        os._exit(0)
    os.waitpid(pid, 0)
    parent.flush()
    assert _deliveries(metrics.RedisStore(redis_url)) == {field: 1.0}
    metrics._redis_stores.pop(redis_url, None)
    if saved is not None:
        metrics._redis_stores[redis_url] = saved


def test_an_unreachable_metrics_redis_never_breaks_the_caller(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_REDIS_URL", "redis://127.0.0.1:1/0")
    metrics.record_rate_limited(1)  # logged, not raised
    samples = scrape(client)  # the database metrics are still served
    assert ("integration_scheduler_due", ()) in samples
