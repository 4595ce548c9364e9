"""The REST root, post types and taxonomies remembered between clients of one site
(``platforms/wordpress/site_cache``): a no-change incremental pull is one list request, in this
process and, with Redis, in every process; every drop reaches every process; Redis away means
asking the site, never failing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import redis
import responses

from integration_service.platforms.http_types import HttpSettings
from integration_service.platforms.wordpress import site_cache
from integration_service.platforms.wordpress.client import WordPressClient
from tests.workers.fakewp import APP_PASSWORD, FakeWordPress

CREDENTIALS = {"username": "admin", "app_password": APP_PASSWORD}
SETTINGS = HttpSettings(allow_private=True, max_retries=0)


def _list_once(fake: FakeWordPress, settings: HttpSettings = SETTINGS) -> None:
    with WordPressClient(fake.url, CREDENTIALS, settings) as client:
        client.list_posts("post", page=1, per_page=10)


def _paths(rsps: responses.RequestsMock) -> list[str]:
    return [call.request.url.split("?")[0].removeprefix(FAKE_URL) for call in rsps.calls]


FAKE_URL = "http://127.0.0.1:8999"


def test_a_second_client_of_the_site_sends_only_the_list_request():
    fake = FakeWordPress(FAKE_URL)
    fake.add_posts(3)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.mount(rsps)
        _list_once(fake)
        first = len(rsps.calls)
        _list_once(fake)
        second = _paths(rsps)[first:]
    assert first >= 3  # root, types (and taxonomies) the first time
    assert second == ["/wp-json/wp/v2/posts"]


def test_a_lapsed_or_forgotten_entry_is_read_from_the_site_again(monkeypatch):
    fake = FakeWordPress(FAKE_URL)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.mount(rsps)
        _list_once(fake)
        site_cache.forget_site(FAKE_URL + "/")
        before = len(rsps.calls)
        _list_once(fake)
        assert "/wp-json/" in _paths(rsps)[before:]  # discovered again
        monkeypatch.setattr(site_cache.time, "monotonic", lambda: 1e12)  # far past the TTL
        before = len(rsps.calls)
        _list_once(fake)
        assert "/wp-json/wp/v2/types" in _paths(rsps)[before:]


def test_a_404_through_a_remembered_root_drops_it():
    fake = FakeWordPress(FAKE_URL)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.mount(rsps)
        _list_once(fake)
        with WordPressClient(fake.url, CREDENTIALS, SETTINGS) as client:
            assert client.call("GET", "wp/v2/nothing-here").status_code == 404
        assert site_cache.shapes_for(None).get((FAKE_URL + "/", "admin")) is None


def test_other_credentials_do_not_share_an_entry():
    fake = FakeWordPress(FAKE_URL)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.mount(rsps)
        _list_once(fake)
        with WordPressClient(fake.url, {"username": "editor", "app_password": APP_PASSWORD}, SETTINGS) as client:
            before = len(rsps.calls)
            client.list_posts("post", page=1, per_page=10)
            assert "/wp-json/" in _paths(rsps)[before:]


@pytest.fixture
def shared(redis_url: str | None) -> HttpSettings:
    """Settings whose structure cache is in Redis (as REDIS_URL makes it for every worker)."""
    if not redis_url:
        pytest.skip("TEST_REDIS_URL is not set")
    return dataclasses.replace(SETTINGS, structure_cache_url=redis_url)


def _shape_keys(redis_url: str) -> list[bytes]:
    return list(redis.Redis.from_url(redis_url).scan_iter(site_cache.KEY_PREFIX + "*"))


def test_on_redis_every_process_shares_the_entry(shared: HttpSettings, redis_url: str) -> None:
    fake = FakeWordPress(FAKE_URL)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.mount(rsps)
        _list_once(fake, shared)
        site_cache.clear()  # nothing of it in this process: what follows reads Redis
        first = len(rsps.calls)
        _list_once(fake, shared)
        assert _paths(rsps)[first:] == ["/wp-json/wp/v2/posts"]
    assert _shape_keys(redis_url) == [(site_cache.KEY_PREFIX + FAKE_URL + "/").encode()]
    assert 0 < redis.Redis.from_url(redis_url).pttl(_shape_keys(redis_url)[0]) <= shared.structure_cache_seconds * 1000


@pytest.mark.parametrize("drop", ["structure push", "404", "metadata sync"])
def test_on_redis_a_drop_reaches_every_process(app, shared: HttpSettings, redis_url: str, drop: str) -> None:
    fake = FakeWordPress(FAKE_URL)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.mount(rsps)
        _list_once(fake, shared)
        if drop == "structure push":  # the worker storing the pushed structure (sync.runner)
            app.config["REDIS_URL"] = redis_url
            try:
                site_cache.forget_site(FAKE_URL)
            finally:
                app.config["REDIS_URL"] = None
        elif drop == "404":
            with WordPressClient(fake.url, CREDENTIALS, shared) as client:
                assert client.call("GET", "wp/v2/nothing-here").status_code == 404
        else:  # a metadata sync or a reconcile starts with this (sync.runner)
            with WordPressClient(fake.url, CREDENTIALS, shared) as client:
                client.forget_site_shape()
        assert _shape_keys(redis_url) == []
        before = len(rsps.calls)
        _list_once(fake, shared)  # another process: asks the site again
        assert "/wp-json/wp/v2/types" in _paths(rsps)[before:]


def test_with_redis_away_the_client_asks_the_site(monkeypatch: Any) -> None:
    away = dataclasses.replace(SETTINGS, structure_cache_url="redis://127.0.0.1:1/0")
    store = site_cache.shapes_for(away.structure_cache_url, away.structure_cache_seconds)
    assert isinstance(store, site_cache.RedisShapes)
    monkeypatch.setattr(store.fallback, "retry_seconds", 0.0)  # try Redis every time
    fake = FakeWordPress(FAKE_URL)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.mount(rsps)
        _list_once(fake, away)
        before = len(rsps.calls)
        _list_once(fake, away)  # nothing remembered anywhere: discovery and types again, no error
        assert "/wp-json/wp/v2/types" in _paths(rsps)[before:]
    assert store.fallback.down
