"""The platform registry."""

from __future__ import annotations

import pytest

from integration_service.errors import PlatformNotSupported
from integration_service.platforms.registry import client_for
from integration_service.platforms.wordpress import WordPressClient


def test_wordpress_client_uses_config_site_url_and_app_settings(factory, app) -> None:
    site = factory.site(url="https://fallback.example.com")
    integration = factory.integration(
        site,
        config_json={"site_url": "https://blog.example.org"},
        credentials_json={"api_key": "k" * 20, "username": "u", "app_password": "p w"},
    )
    client = client_for(integration)
    try:
        assert isinstance(client, WordPressClient)
        assert client.site_url == "https://blog.example.org"
        assert client.has_app_password and client.has_api_key
        assert client.settings.read_timeout == app.config["WP_READ_TIMEOUT"]
        assert client.settings.allow_private is True  # TestingConfig
    finally:
        client.close()


def test_site_url_falls_back_to_the_site(factory) -> None:
    site = factory.site(url="https://fallback.example.com")
    integration = factory.integration(site, config_json={})
    with client_for(integration) as client:
        assert client.site_url == "https://fallback.example.com"


@pytest.mark.parametrize("platform", ["shopify", "custom"])
def test_other_platforms_are_not_supported(factory, platform: str) -> None:
    integration = factory.integration(platform=platform, credentials_json={})
    with pytest.raises(PlatformNotSupported) as excinfo:
        client_for(integration)
    assert excinfo.value.status_code == 501 and excinfo.value.code == "platform_not_supported"
