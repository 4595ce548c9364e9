"""Fakes for platform tests: a DNS that never leaves the process, and a WordPress answered by
``responses``.  Test modules outside tests/platforms import ``fake_dns_fixture`` and
``mocked_fixture`` (fixtures named ``fake_dns`` and ``mocked``)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from integration_service.platforms import ssrf
from integration_service.platforms.http import HttpTransport
from integration_service.platforms.http_types import HttpSettings
from integration_service.platforms.wordpress import WordPressClient

PUBLIC_IP = "93.184.216.34"
SITE = "https://wp.example.test"
API_KEY = "site-key-0123456789abcdef0123456789"
APP_PASSWORD = "abcd EFGH ijkl MNOP qrst UVWX"
USERNAME = "editor1"

# host -> addresses; anything else resolves to PUBLIC_IP; NXDOMAIN hosts raise.
DNS: dict[str, list[str]] = {
    "localhost": ["127.0.0.1", "::1"],
    "private.example.test": ["10.1.2.3"],
    "mixed.example.test": [PUBLIC_IP, "192.168.1.10"],
    "metadata.example.test": ["169.254.169.254"],
}
NXDOMAIN = {"nx.example.test"}


def fake_resolve(host: str, port: int) -> list[Any]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    if host in NXDOMAIN:
        raise ssrf.DnsFailure(f"The host name {host} could not be resolved.")
    return [ipaddress.ip_address(address) for address in DNS.get(host, [PUBLIC_IP])]


@pytest.fixture(name="fake_dns")
def fake_dns_fixture(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    monkeypatch.setattr(ssrf, "resolve_host", fake_resolve)
    return DNS


@pytest.fixture(name="mocked")
def mocked_fixture() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(
    credentials: dict[str, Any] | None = None,
    site: str = SITE,
    allow_private: bool = False,
    max_retries: int = 2,
    max_bytes: int = 1024 * 1024,
    sleeps: Sleeps | None = None,
    **settings: Any,
) -> WordPressClient:
    http_settings = HttpSettings(
        connect_timeout=2,
        read_timeout=5,
        max_retries=max_retries,
        max_response_bytes=max_bytes,
        allow_private=allow_private,
        **settings,
    )
    transport = HttpTransport(http_settings, sleep=sleeps if sleeps is not None else Sleeps())
    creds = (
        {"api_key": API_KEY, "username": USERNAME, "app_password": APP_PASSWORD} if credentials is None else credentials
    )
    return WordPressClient(site, creds, http_settings, transport)


def index(namespaces: list[str] | None = None, name: str = "Example Blog", site: str = SITE) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Just another WordPress site",
        "url": site,
        "home": site,
        "gmt_offset": 0,
        "timezone_string": "UTC",
        "namespaces": namespaces if namespaces is not None else ["oembed/1.0", "wp/v2", "igny8/v1"],
        "authentication": {"application-passwords": {"endpoints": {"authorization": f"{site}/wp-admin/x.php"}}},
    }


def user_me() -> dict[str, Any]:
    return {
        "id": 7,
        "name": "Editor One",
        "slug": "editor1",
        "roles": ["editor"],
        "capabilities": {"edit_posts": True, "publish_posts": True},
    }


def plugin_status() -> dict[str, Any]:
    return {"plugin_version": "1.0.0", "wordpress_version": "6.1.9", "php_version": "8.2", "connected": True}


def add_wordpress(
    mock: responses.RequestsMock,
    site: str = SITE,
    namespaces: list[str] | None = None,
    plugin: bool = True,
    version_in_opml: str | None = "6.4.2",
    api_key: str = API_KEY,
) -> None:
    """A healthy WordPress with pretty permalinks (and the plugin unless ``plugin=False``)."""
    if namespaces is None:
        namespaces = ["oembed/1.0", "wp/v2"] + (["igny8/v1"] if plugin else [])
    mock.get(f"{site}/wp-json/", json=index(namespaces, site=site))
    mock.add_callback(responses.GET, f"{site}/wp-json/wp/v2/users/me", callback=users_me_callback)
    if plugin:
        mock.add_callback(responses.GET, f"{site}/wp-json/igny8/v1/status", callback=plugin_status_callback(api_key))
    if version_in_opml:
        mock.get(
            f"{site}/wp-links-opml.php",
            body=f'<?xml version="1.0"?>\n<opml version="1.0">\n<!-- generator="WordPress/{version_in_opml}" -->',
            content_type="text/xml",
        )


def users_me_callback(request: Any) -> tuple[int, dict[str, str], str]:
    if request.headers.get("Authorization") == "Basic " + basic(USERNAME, APP_PASSWORD):
        return 200, {}, dumps(user_me())
    return (
        401,
        {},
        dumps(
            {
                "code": "incorrect_password",
                "message": "The provided password is an invalid application password.",
                "data": {"status": 401},
            }
        ),
    )


def plugin_status_callback(api_key: str):
    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        if request.headers.get("X-API-Key") == api_key:
            return 200, {}, dumps(plugin_status())
        return (
            401,
            {},
            dumps({"code": "igny8_bridge_unauthorized", "message": "Invalid API key.", "data": {"status": 401}}),
        )

    return callback


def basic(username: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{username}:{password}".encode()).decode()


def dumps(value: Any) -> str:
    return json.dumps(value)
