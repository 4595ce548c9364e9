"""The REST root, post types and taxonomies remembered between clients of one site
(``platforms/wordpress/site_cache``): a no-change incremental pull is one list request."""

from __future__ import annotations

import responses

from integration_service.platforms.http_types import HttpSettings
from integration_service.platforms.wordpress import site_cache
from integration_service.platforms.wordpress.client import WordPressClient
from tests.workers.fakewp import APP_PASSWORD, FakeWordPress

CREDENTIALS = {"username": "admin", "app_password": APP_PASSWORD}
SETTINGS = HttpSettings(allow_private=True, max_retries=0)


def _list_once(fake: FakeWordPress) -> None:
    with WordPressClient(fake.url, CREDENTIALS, SETTINGS) as client:
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
        assert site_cache.get((FAKE_URL + "/", "admin")) is None


def test_other_credentials_do_not_share_an_entry():
    fake = FakeWordPress(FAKE_URL)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.mount(rsps)
        _list_once(fake)
        with WordPressClient(fake.url, {"username": "editor", "app_password": APP_PASSWORD}, SETTINGS) as client:
            before = len(rsps.calls)
            client.list_posts("post", page=1, per_page=10)
            assert "/wp-json/" in _paths(rsps)[before:]
