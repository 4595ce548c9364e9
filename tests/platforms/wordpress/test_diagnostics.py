"""WordPressClient.test_connection against a WordPress faked with ``responses``: every stage."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from tests.platforms.fakes import (
    API_KEY,
    APP_PASSWORD,
    SITE,
    USERNAME,
    add_wordpress,
    basic,
    fake_dns_fixture,  # noqa: F401 - fixture
    index,
    make_client,
    mocked_fixture,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.usefixtures("fake_dns")

HTML = "<!doctype html><html><head><title>Shop</title></head><body>Hello</body></html>"
WP_HTML = '<html><head><meta name="generator" content="WordPress 6.1.9"></head><body><img src="/wp-content/x.png">'


def check(report, name: str) -> dict:
    return next(item for item in report.details["checks"] if item["name"] == name)


def test_success_reports_every_check(mocked: responses.RequestsMock) -> None:
    add_wordpress(mocked)
    report = make_client().test_connection()
    assert report.success, report.message
    details = report.details
    assert "stage" not in details
    assert details["site_name"] == "Example Blog"
    assert details["wordpress_version"] == "6.1.9"  # from the plugin's status route
    assert details["plugin_present"] is True and details["plugin_version"] == "1.0.0"
    assert details["rest_style"] == "pretty"
    assert details["rest_api_root"] == f"{SITE}/wp-json/"
    assert "wp/v2" in details["namespaces"]
    assert details["authenticated_user"]["name"] == "Editor One"
    assert [c["outcome"] for c in details["checks"]] == ["ok", "ok", "ok", "ok"]
    assert isinstance(details["duration_ms"], int)


def test_app_password_without_plugin_succeeds_and_reads_version_from_opml(mocked: responses.RequestsMock) -> None:
    add_wordpress(mocked, plugin=False, version_in_opml="6.4.2")
    report = make_client().test_connection()
    assert report.success, report.message
    assert report.details["wordpress_version"] == "6.4.2"
    assert check(report, "version")["source"] == "wp-links-opml.php"
    assert check(report, "plugin")["outcome"] == "skipped"


def test_version_from_feed_when_opml_hides_it(mocked: responses.RequestsMock) -> None:
    add_wordpress(mocked, plugin=False, version_in_opml=None)
    mocked.get(f"{SITE}/wp-links-opml.php", status=404)
    mocked.get(f"{SITE}/", body="<rss><channel><generator>https://wordpress.org/?v=6.2.1</generator></channel></rss>")
    report = make_client().test_connection()
    assert report.details["wordpress_version"] == "6.2.1"


def test_version_not_exposed_does_not_fail(mocked: responses.RequestsMock) -> None:
    add_wordpress(mocked, plugin=False, version_in_opml=None)
    report = make_client().test_connection()
    assert report.success
    assert report.details["wordpress_version"] is None
    assert check(report, "version")["outcome"] == "not_exposed"


def test_dns_failure(mocked: responses.RequestsMock) -> None:
    report = make_client(site="https://nx.example.test").test_connection()
    assert not report.success
    assert report.details["stage"] == "dns"


def test_refused_connection(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", body=requests.ConnectionError("[Errno 111] Connection refused"))
    report = make_client(max_retries=0).test_connection()
    assert report.details["stage"] == "connect"


def test_timeout(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", body=requests.exceptions.ConnectTimeout("timed out"))
    report = make_client(max_retries=0).test_connection()
    assert report.details["stage"] == "timeout"


def test_tls_error(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", body=requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED"))
    report = make_client().test_connection()
    assert report.details["stage"] == "tls"
    assert len(mocked.calls) == 1  # TLS errors are not retried


def test_non_json_html_page(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", body=HTML, content_type="text/html")
    mocked.get(f"{SITE}/", body=HTML, content_type="text/html")
    report = make_client().test_connection()
    assert report.details["stage"] == "not_wordpress"
    assert check(report, "rest_api")["outcome"] == "failed"


def test_json_api_that_is_not_wordpress(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", json={"status": "ok", "version": "3"})
    mocked.get(f"{SITE}/", json={"status": "ok", "version": "3"})
    report = make_client().test_connection()
    assert report.details["stage"] == "not_wordpress"


def test_rest_disabled_404(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", status=404, body=WP_HTML, content_type="text/html")
    mocked.get(f"{SITE}/", body=WP_HTML, content_type="text/html")
    report = make_client().test_connection()
    assert report.details["stage"] == "rest_disabled"
    assert "404" in report.message


def test_rest_api_restricted_by_a_plugin(mocked: responses.RequestsMock) -> None:
    blocked = {
        "code": "rest_cannot_access",
        "message": "Only authenticated users can access the REST API.",
        "data": {"status": 401},
    }
    mocked.get(f"{SITE}/wp-json/", status=401, json=blocked)
    mocked.get(f"{SITE}/", status=401, json=blocked)
    report = make_client(credentials={"api_key": API_KEY}).test_connection()
    assert report.details["stage"] == "rest_disabled"


def test_restricted_rest_api_lets_the_app_password_in(mocked: responses.RequestsMock) -> None:
    blocked = {"code": "rest_login_required", "message": "Login required.", "data": {"status": 401}}

    def root(request):
        if request.headers.get("Authorization") == "Basic " + basic(USERNAME, APP_PASSWORD):
            return 200, {}, json.dumps(index())
        return 401, {}, json.dumps(blocked)

    add_wordpress(mocked)
    mocked.remove(responses.GET, f"{SITE}/wp-json/")
    mocked.add_callback(responses.GET, f"{SITE}/wp-json/", callback=root)
    report = make_client().test_connection()
    assert report.success, report.message


def test_query_style_fallback_without_pretty_permalinks(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", status=404, body=WP_HTML, content_type="text/html")
    mocked.get(
        f"{SITE}/",
        json=index(),
        match=[responses.matchers.query_param_matcher({"rest_route": "/"}, strict_match=False)],
    )
    mocked.get(
        f"{SITE}/",
        json={"id": 7, "name": "Editor One", "roles": ["editor"], "capabilities": {}},
        match=[responses.matchers.query_param_matcher({"rest_route": "/wp/v2/users/me"}, strict_match=False)],
    )
    mocked.get(
        f"{SITE}/",
        json={"plugin_version": "1.0.0", "wordpress_version": "6.1.9"},
        match=[responses.matchers.query_param_matcher({"rest_route": "/igny8/v1/status"}, strict_match=False)],
    )
    report = make_client().test_connection()
    assert report.success, report.message
    assert report.details["rest_style"] == "query"
    assert report.details["rest_api_root"] == f"{SITE}/?rest_route=/"
    users_me = next(call for call in mocked.calls if "users%2Fme" in call.request.url)
    assert "Authorization" in users_me.request.headers


def test_wrong_app_password_is_auth(mocked: responses.RequestsMock) -> None:
    add_wordpress(mocked)
    report = make_client(
        credentials={"api_key": API_KEY, "username": USERNAME, "app_password": "wrong"}
    ).test_connection()
    assert report.details["stage"] == "auth"
    assert check(report, "application_password")["wp_code"] == "incorrect_password"
    assert (
        len(
            [
                c
                for c in mocked.calls
                if c.request.url.endswith("/users/me?context=edit&_fields=id%2Cname%2Cslug%2Croles%2Ccapabilities")
            ]
        )
        == 1
    )


def test_forbidden_app_password_is_auth(mocked: responses.RequestsMock) -> None:
    add_wordpress(mocked)
    mocked.remove(responses.GET, f"{SITE}/wp-json/wp/v2/users/me")
    mocked.get(f"{SITE}/wp-json/wp/v2/users/me", status=403, json={"code": "rest_forbidden", "message": "No."})
    report = make_client().test_connection()
    assert report.details["stage"] == "auth"


def test_wrong_api_key_is_auth(mocked: responses.RequestsMock) -> None:
    add_wordpress(mocked)
    report = make_client(credentials={"api_key": "another-key-0123456789"}).test_connection()
    assert report.details["stage"] == "auth"
    assert check(report, "plugin")["outcome"] == "failed"


def test_plugin_namespace_missing_with_only_the_api_key(mocked: responses.RequestsMock) -> None:
    add_wordpress(mocked, plugin=False)
    report = make_client(credentials={"api_key": API_KEY}).test_connection()
    assert not report.success
    assert report.details["stage"] == "plugin"
    assert report.details["plugin_present"] is False


def test_server_error(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", status=500, body="<h1>Error establishing a database connection</h1>")
    report = make_client().test_connection()
    assert report.details["stage"] == "http"
    assert "500" in report.message


def test_core_routes_turned_off(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", json=index(namespaces=["oembed/1.0"]))
    report = make_client().test_connection()
    assert report.details["stage"] == "rest_disabled"


def test_incomplete_app_password_credentials(mocked: responses.RequestsMock) -> None:
    report = make_client(credentials={"api_key": API_KEY, "username": USERNAME}).test_connection()
    assert report.details["stage"] == "auth"
    assert len(mocked.calls) == 0


def test_redirect_to_private_address_refused(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", status=302, headers={"Location": "http://10.0.0.5/wp-json/"})
    report = make_client().test_connection()
    assert report.details["stage"] == "connect"
    assert "not allowed" in report.message


def test_private_site_url_refused_without_the_switch(mocked: responses.RequestsMock) -> None:
    report = make_client(site="http://127.0.0.1:8881").test_connection()
    assert report.details["stage"] == "connect"
    assert "not allowed" in report.message
    assert len(mocked.calls) == 0


def test_secrets_echoed_by_the_site_are_scrubbed(mocked: responses.RequestsMock) -> None:
    """A hostile site echoes what it received; nothing of it may come back in the report."""

    def echo(request):
        message = f"bad key {request.headers.get('X-API-Key')} auth {request.headers.get('Authorization')}"
        return 401, {}, json.dumps({"code": "rest_forbidden", "message": message})

    add_wordpress(mocked)
    mocked.remove(responses.GET, f"{SITE}/wp-json/wp/v2/users/me")
    mocked.add_callback(responses.GET, f"{SITE}/wp-json/wp/v2/users/me", callback=echo)
    report = make_client().test_connection()
    dumped = json.dumps(report.details) + report.message
    assert report.details["stage"] == "auth"
    assert "[redacted]" in check(report, "application_password")["wp_message"]
    for secret in (API_KEY, APP_PASSWORD, APP_PASSWORD.replace(" ", ""), basic(USERNAME, APP_PASSWORD)):
        assert secret not in dumped


def test_warns_when_wordpress_names_another_host(mocked: responses.RequestsMock) -> None:
    add_wordpress(mocked)
    mocked.remove(responses.GET, f"{SITE}/wp-json/")
    mocked.get(f"{SITE}/wp-json/", json={**index(), "home": "https://www.example.test"})
    report = make_client().test_connection()
    assert report.success
    assert any("https://www.example.test" in warning for warning in report.details["warnings"])


def test_rate_limited_site_is_an_http_failure(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SITE}/wp-json/", status=429, headers={"Retry-After": "0"})
    report = make_client(max_retries=1).test_connection()
    assert report.details["stage"] == "http" and "429" in report.message
    assert len(mocked.calls) == 2
