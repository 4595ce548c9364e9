"""End-to-end fixtures: a real WordPress on loopback, started by scripts/wordpress-e2e.sh.

``E2E_WP_NAME`` / ``E2E_WP_PORT`` pick the site (default ``e2e`` on 8881).  Outside CI the
tests are skipped with the reason when WordPress cannot start; with ``REQUIRE_E2E=1`` (CI) they
fail instead.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def wordpress_site():
    from tests.support import wordpress

    name = os.environ.get("E2E_WP_NAME", "e2e")
    port = int(os.environ.get("E2E_WP_PORT", "8881"))
    reason = wordpress.wordpress_unavailable_reason()
    if reason and not os.environ.get("REQUIRE_E2E"):
        pytest.skip(f"WordPress end-to-end tests skipped: {reason}")
    return wordpress.start_site(name=name, port=port, activate_plugin=True)


@pytest.fixture
def integration(factory, site, wordpress_site):
    """A WordPress integration of ``site`` on the test WordPress, with its application password
    and the site's API key (what the plugin's lookups use)."""
    credentials = {
        "api_key": site.plain_api_key,
        "username": wordpress_site.admin_user,
        "app_password": wordpress_site.app_password,
    }
    return factory.integration(site, config_json={"site_url": wordpress_site.url}, credentials_json=credentials)
