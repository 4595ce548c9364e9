"""Connection tests and the WordPress client against a real WordPress (scripts/wordpress-e2e.sh).

The plugin is active on the e2e site (the ``wordpress_site`` fixture activates it); tests that
need the plugin to know a site's key set its option and restore the previous value afterwards,
because other end-to-end tests share the site.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import pytest

from integration_service.extensions import db
from integration_service.models import SiteIntegration, SyncEvent
from integration_service.platforms.base import PostInput, PostNotFound
from integration_service.platforms.redact import basic_token
from integration_service.platforms.registry import client_for
from tests.support import wordpress

pytestmark = pytest.mark.e2e

BASE = "/api/v1/integration/integrations"
KEY_OPTION = "igny8_bridge_api_key"


def php_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@pytest.fixture
def plugin_key(wordpress_site) -> Iterator:
    """``plugin_key(value)`` stores the plugin's API key on the site for one test."""
    previous = wordpress.eval_php(wordpress_site.name, f"echo get_option({php_string(KEY_OPTION)}, '');")

    def set_key(value: str) -> None:
        wordpress.eval_php(wordpress_site.name, f"update_option({php_string(KEY_OPTION)}, {php_string(value)});")

    yield set_key
    set_key(previous)


@pytest.fixture
def real_site(factory, account, wordpress_site):
    return factory.site(account, url=wordpress_site.url)


@pytest.fixture
def site_facts(wordpress_site) -> dict:
    out = wordpress.eval_php(
        wordpress_site.name,
        "echo wp_json_encode(array('name' => get_bloginfo('name'), "
        "'version' => get_bloginfo('version'), 'plugin' => defined('IGNY8_BRIDGE_VERSION')));",
    )
    return json.loads(out)


def app_credentials(site, wordpress_site, password: str | None = None) -> dict:
    return {
        "api_key": site.plain_api_key,
        "username": wordpress_site.admin_user,
        "app_password": password or wordpress_site.app_password,
    }


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_correct_application_password_succeeds(
    editor_client, factory, real_site, wordpress_site, plugin_key, site_facts
) -> None:
    plugin_key(real_site.plain_api_key)
    integration = factory.integration(real_site, credentials_json=app_credentials(real_site, wordpress_site))
    response = editor_client.post(f"{BASE}/{integration.id}/test_connection/")
    assert response.status_code == 200, response.get_json()
    details = response.get_json()["details"]
    assert details["site_name"] == site_facts["name"]
    assert details["wordpress_version"] == site_facts["version"] == wordpress_site.wp_version
    assert details["authenticated_user"]["name"] == wordpress_site.admin_user
    assert "wp/v2" in details["namespaces"]
    assert details["plugin_present"] is site_facts["plugin"]
    db.session.refresh(integration)
    assert integration.last_connection_test_ok is True


def test_application_password_without_the_plugins_key_reads_the_version_elsewhere(
    factory, real_site, wordpress_site, site_facts, plugin_key
) -> None:
    """Without a usable plugin answer the version comes from what WordPress publishes."""
    plugin_key(real_site.plain_api_key)
    integration = factory.integration(
        real_site, credentials_json={"username": wordpress_site.admin_user, "app_password": wordpress_site.app_password}
    )
    with client_for(integration) as client:
        report = client.test_connection()
    assert report.success, report.message
    assert report.details["wordpress_version"] == site_facts["version"]
    version_check = next(check for check in report.details["checks"] if check["name"] == "version")
    assert version_check["source"] in ("wp-links-opml.php", "feed")


def test_wrong_application_password_fails_with_auth(editor_client, factory, real_site, wordpress_site) -> None:
    credentials = app_credentials(real_site, wordpress_site, password="abcd efgh ijkl mnop qrst uvwx")
    integration = factory.integration(real_site, credentials_json=credentials)
    response = editor_client.post(f"{BASE}/{integration.id}/test_connection/")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "connection_failed" and error["details"]["stage"] == "auth"


def test_stopped_wordpress_fails_with_connect(editor_client, factory, real_site, wordpress_site) -> None:
    integration = factory.integration(
        real_site,
        config_json={"site_url": f"http://127.0.0.1:{free_loopback_port()}"},
        credentials_json=app_credentials(real_site, wordpress_site),
    )
    response = editor_client.post(f"{BASE}/{integration.id}/test_connection/")
    assert response.status_code == 400
    assert response.get_json()["error"]["details"]["stage"] == "connect"


def test_plugin_key_alone_passes_when_the_plugin_knows_it(
    editor_client, factory, real_site, plugin_key, site_facts
) -> None:
    if not site_facts["plugin"]:
        pytest.skip("the IGNY8 Bridge plugin is not active on the e2e site")
    plugin_key(real_site.plain_api_key)
    integration = factory.integration(real_site)  # credentials: the site's API key only
    response = editor_client.post(f"{BASE}/{integration.id}/test_connection/")
    assert response.status_code == 200, response.get_json()
    details = response.get_json()["details"]
    assert details["plugin_version"] and details["wordpress_version"] == site_facts["version"]


def test_onboarding_against_the_real_site(client, real_site, wordpress_site, plugin_key, site_facts) -> None:
    if not site_facts["plugin"]:
        pytest.skip("the IGNY8 Bridge plugin is not active on the e2e site")
    body = {"site_id": real_site.id, "api_key": real_site.plain_api_key, "site_url": wordpress_site.url}
    plugin_key("a-different-key-the-plugin-holds")
    failed = client.post(f"{BASE}/test-connection/", json=body)
    assert failed.status_code == 400 and failed.get_json()["error"]["details"]["stage"] == "auth"
    assert db.session.scalars(db.select(SiteIntegration)).all() == []
    assert db.session.scalars(db.select(SyncEvent)).all() == []
    plugin_key(real_site.plain_api_key)
    response = client.post(f"{BASE}/test-connection/", json=body)
    assert response.status_code == 200, response.get_json()
    assert db.session.get(SiteIntegration, response.get_json()["integration_id"]) is not None


def test_no_secret_in_logs_during_a_real_test(
    editor_client, factory, real_site, wordpress_site, plugin_key, caplog
) -> None:
    plugin_key(real_site.plain_api_key)
    integration = factory.integration(real_site, credentials_json=app_credentials(real_site, wordpress_site))
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request line at DEBUG
    response = editor_client.post(f"{BASE}/{integration.id}/test_connection/")
    assert response.status_code == 200
    secrets = [
        real_site.plain_api_key,
        wordpress_site.app_password,
        basic_token(wordpress_site.admin_user, wordpress_site.app_password),
    ]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /wp-json/" in logged  # the HTTP traffic was logged, without credentials
    stored = json.dumps([event.details for event in db.session.scalars(db.select(SyncEvent))])
    for secret in secrets:
        assert secret not in logged and secret not in stored and secret not in response.get_data(as_text=True)


def test_client_reads_and_writes_posts(factory, real_site, wordpress_site, site_facts) -> None:
    integration = factory.integration(
        real_site, credentials_json={"username": wordpress_site.admin_user, "app_password": wordpress_site.app_password}
    )
    created_id = None
    with client_for(integration) as client:
        try:
            first = client.list_posts("post", 1, per_page=2)
            assert first.total and first.total >= 2 and len(first.posts) == 2
            stamps = [post.modified_gmt for post in first.posts]
            assert stamps == sorted(stamps)
            structure = client.fetch_structure()
            assert structure["post_types"]["post"]["rest_base"] == "posts"
            created = client.create_post(
                PostInput(
                    content_type="post",
                    title="E2E connection client post",
                    content_html="<p>Body</p>",
                    status="draft",
                    taxonomies={"categories": ["E2E Client Category"], "tags": ["e2e-client-tag"]},
                    meta={"_igny8_content_id": 4242},
                )
            )
            created_id = created.external_id
            assert created.status == "draft" and created.title == "E2E connection client post"
            assert len(created.taxonomies["categories"]) == 1 and len(created.taxonomies["tags"]) == 1
            if site_facts["plugin"]:
                assert created.raw["meta"]["_igny8_content_id"] == 4242
            updated = client.update_post(created_id, PostInput("post", "E2E updated", "<p>New</p>", "draft"))
            assert client.get_post("post", created_id).title == updated.title == "E2E updated"
            later = client.list_posts("post", 1, modified_after=created.modified_gmt.replace(year=2000))
            assert created_id in {post.external_id for post in later.posts} or (later.total_pages or 0) > 1
            with pytest.raises(PostNotFound):
                client.get_post("post", "99999999")
        finally:
            if created_id:
                wordpress.eval_php(
                    wordpress_site.name,
                    f"wp_delete_post({int(created_id)}, true);"
                    "foreach (array('category' => 'E2E Client Category', 'post_tag' => 'e2e-client-tag') as $t => $n)"
                    " { $term = get_term_by('name', $n, $t); if ($term) { wp_delete_term($term->term_id, $t); } }",
                )
