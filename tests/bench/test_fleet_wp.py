"""The fleet benchmark's WordPress emulator answers the service's real WordPress client: a
connection test, a full pull through the sync task, the listing variants, and the per-site
concurrency log that the benchmark reads (which the politeness gate keeps at WP_CONCURRENCY)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bench.fleet_wp import BASE_TIME, FleetEmulator
from integration_service.extensions import db
from integration_service.models import Content
from integration_service.platforms.http_types import HttpSettings
from integration_service.platforms.politeness import PolitenessSettings
from integration_service.platforms.wordpress import WordPressClient
from tests.sync.test_tasks import enqueue_sync
from tests.workers.fakewp import APP_PASSWORD, make_integration

CREDENTIALS = {"api_key": "k" * 32, "username": "admin", "app_password": APP_PASSWORD}


@pytest.fixture(scope="module")
def fleet() -> Iterator[FleetEmulator]:
    emulator = FleetEmulator([250, 30, 0, 40], page_counts=[5, 0, 0, 0]).start_in_thread()
    yield emulator
    emulator.stop()


@pytest.fixture(autouse=True)
def clean_logs(fleet: FleetEmulator) -> None:
    fleet.reset()


def _client(url: str, **settings) -> WordPressClient:
    return WordPressClient(url, CREDENTIALS, HttpSettings(allow_private=True, **settings))


def _list_queries(fleet: FleetEmulator, site: int, base: str = "posts") -> list[dict[str, str]]:
    queries = []
    for _start, _end, _method, target, _status in fleet.sites[site].log:
        parts = urlsplit(target)
        if parts.path == f"/wp-json/wp/v2/{base}":
            queries.append({key: values[-1] for key, values in parse_qs(parts.query).items()})
    return queries


def test_the_connection_test_passes(fleet: FleetEmulator) -> None:
    with _client(fleet.sites[1].url) as client:
        report = client.test_connection()
    assert report.success, report.message
    outcomes = {check["name"]: check["outcome"] for check in report.details["checks"]}
    assert outcomes["application_password"] == "ok" and outcomes["plugin"] == "ok"


def test_a_full_pull_through_the_sync_task(app, factory, fleet: FleetEmulator) -> None:
    site = factory.site(url=fleet.sites[0].url)
    integration = make_integration(factory, site, fleet.sites[0].url)

    event = enqueue_sync(app, integration)

    assert event.status == "success", event.error_message
    assert db.session.scalar(db.select(db.func.count(Content.id))) == 255
    pages = sorted(int(query["page"]) for query in _list_queries(fleet, 0))
    assert pages == [1, 2, 3]  # 250 posts, 100 per page, nothing asked twice
    assert all(query["orderby"] == "id" and query["per_page"] == "100" for query in _list_queries(fleet, 0))
    assert fleet.stats()["sites"][1]["requests"] == 0  # the other sites saw nothing

    fleet.reset()
    again = enqueue_sync(app, integration)  # incremental: modified_after, one page, nothing new
    assert again.status == "success", again.error_message
    assert all("modified_after" in query for query in _list_queries(fleet, 0))
    assert again.details["created"] == 0


def test_listing_variants(fleet: FleetEmulator) -> None:
    with _client(fleet.sites[0].url) as client:
        light = client.list_posts("post", 3, per_page=100, fields=["modified_gmt"])
        assert light.total == 250 and light.total_pages == 3
        assert [post.external_id for post in light.posts] == [str(n) for n in range(201, 251)]
        assert set(light.posts[0].raw) == {"id", "modified_gmt"}
        assert client.list_posts("post", 4).posts == []  # WordPress's 400 past the last page

        after = datetime.fromtimestamp(BASE_TIME.timestamp() + 240, UTC)  # post n is modified at BASE + n s
        changed = client.list_posts("post", 1, modified_after=after)
        assert changed.total == 10 and changed.posts[0].external_id == "241"
        assert changed.posts[0].title == "Post 241 of site 0" and changed.posts[0].taxonomies["categories"] == [1]

        single = client.get_post("page", "253")
        assert single.content_type == "page" and single.modified_gmt is not None
    with _client(fleet.sites[2].url) as client:
        empty = client.list_posts("post", 1)
        assert empty.posts == [] and empty.total == 0


def test_touch_edits_posts_for_incremental_pulls(fleet: FleetEmulator) -> None:
    response = requests.post(f"{fleet.admin_url}/_touch", params={"site": 3, "count": 4}, timeout=5)
    assert response.json() == {"touched": 4}
    with _client(fleet.sites[3].url) as client:
        changed = client.list_posts("post", 1, modified_after=datetime(2026, 1, 1, tzinfo=UTC))
    assert [post.external_id for post in changed.posts] == ["1", "2", "3", "4"]


def test_in_flight_requests_per_site_stay_within_wp_concurrency(fleet: FleetEmulator, redis_url) -> None:
    # The benchmark's proof of politeness: the emulator counts requests in flight per site.
    fleet.sites[1].latency = 0.03
    try:
        settings = {"politeness": PolitenessSettings(concurrency=2, redis_url=redis_url), "pool_size": 2}

        def pull() -> None:
            with _client(fleet.sites[1].url, **settings) as client:
                for _ in range(4):
                    client.list_posts("post", 1, per_page=10)

        threads = [threading.Thread(target=pull) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        fleet.sites[1].latency = 0.0
    stats = requests.get(f"{fleet.admin_url}/_stats", timeout=5).json()
    site = stats["sites"][1]
    assert site["requests"] >= 6 * 4
    assert site["max_in_flight"] == 2  # reached, never passed
