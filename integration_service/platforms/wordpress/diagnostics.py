"""The connection checklist behind ``test_connection``: credentials, the REST API root, the
Application Password, the IGNY8 Bridge plugin and the WordPress version, each a named check in
the report's ``details.checks``. It speaks to the site only through the client, which it knows
by the ``ChecklistClient`` Protocol (what the checklist needs of it): the client imports this
module, never the reverse."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..base import ConnectionReport, PlatformError
from ..http import HttpTransport
from ..http_types import HttpResponse
from .discovery import RestRoot
from .mapping import CORE_NAMESPACE, PLUGIN_NAMESPACE, wp_error

_GENERATOR_PATTERNS = (
    re.compile(rb'generator="WordPress/([0-9][0-9A-Za-z.\-]*)"'),
    re.compile(rb"<generator>https?://wordpress\.org/\?v=([0-9][0-9A-Za-z.\-]*)</generator>"),
    re.compile(rb'<meta name="generator" content="WordPress ([0-9][0-9A-Za-z.\-]*)"'),
)


class ChecklistClient(Protocol):
    """What the checklist uses of a WordPress client (``WordPressClient`` is one)."""

    site_url: str
    http: HttpTransport

    @property
    def has_app_password(self) -> bool: ...

    @property
    def has_api_key(self) -> bool: ...

    @property
    def username(self) -> str | None: ...

    @property
    def incomplete_app_password(self) -> str | None: ...

    def scrub(self, value: Any) -> Any: ...

    def site_base(self) -> str: ...

    def discover(self) -> tuple[RestRoot, list[dict[str, Any]]]: ...

    def call(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        auth: str | None = None,
        retry: bool | None = None,
    ) -> HttpResponse: ...


class _StageFailure(Exception):
    """Ends a connection test at a stage (internal to ``test_connection``)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


class ConnectionDiagnostics:
    """One run of the checklist against one client; ``run`` never raises for a failing site."""

    def __init__(self, client: ChecklistClient) -> None:
        self.client = client

    def run(self) -> ConnectionReport:
        """Diagnose the connection step by step; never raises for a failing site."""
        started = time.monotonic()
        checks: list[dict[str, Any]] = []
        details: dict[str, Any] = {
            "site_url": self.client.site_url,
            "credentials": {"application_password": self.client.has_app_password, "api_key": self.client.has_api_key},
            "checks": checks,
        }
        messages: list[str] = []
        try:
            self._check_credentials_configured(checks)
            root = self._check_rest_api(checks, details)
            self._check_app_password(checks, details, messages)
            plugin_status = self._check_plugin(root, checks, details, messages)
            self._check_version(root, plugin_status, checks, details)
        except _StageFailure as failure:
            details["stage"] = failure.stage
            details["duration_ms"] = _ms(started)
            return ConnectionReport(False, self.client.scrub(failure.message), self.client.scrub(details))
        details["duration_ms"] = _ms(started)
        name = details.get("site_name") or self.client.site_url
        version = details.get("wordpress_version")
        summary = f"Connected to {name}" + (f" (WordPress {version})" if version else "") + "."
        return ConnectionReport(True, self.client.scrub(" ".join([summary, *messages])), self.client.scrub(details))

    def _check_credentials_configured(self, checks: list[dict[str, Any]]) -> None:
        missing = self.client.incomplete_app_password
        if missing:
            checks.append({"name": "credentials", "outcome": "failed", "message": f"{missing} is missing."})
            raise _StageFailure("auth", f"The Application Password credentials are incomplete: {missing} is missing.")
        if not self.client.has_app_password and not self.client.has_api_key:
            checks.append({"name": "credentials", "outcome": "failed", "message": "No credentials configured."})
            raise _StageFailure(
                "auth", "The integration has no credentials: add an API key or an Application Password."
            )

    def _check_rest_api(self, checks: list[dict[str, Any]], details: dict[str, Any]) -> RestRoot:
        started = time.monotonic()
        check: dict[str, Any] = {"name": "rest_api"}
        checks.append(check)
        try:
            root, attempts = self.client.discover()
        except PlatformError as exc:
            check.update(outcome="failed", stage=exc.stage, message=exc.message, duration_ms=_ms(started))
            if exc.status_code:
                check["status_code"] = exc.status_code
            raise _StageFailure(exc.stage, exc.message) from None
        index = root.index
        namespaces = root.namespaces
        check.update(outcome="ok", style=root.style, attempts=attempts, duration_ms=_ms(started))
        details.update(
            rest_api_root=root.base if root.style == "pretty" else root.base + "?rest_route=/",
            rest_style=root.style,
            site_name=html.unescape(str(index.get("name") or "")) or None,
            site_description=html.unescape(str(index.get("description") or "")) or None,
            site_home=index.get("home") if isinstance(index.get("home"), str) else None,
            namespaces=namespaces,
            plugin_present=PLUGIN_NAMESPACE in namespaces,
            application_passwords_available="application-passwords" in (index.get("authentication") or {}),
        )
        home = details.get("site_home")
        if isinstance(home, str) and urlsplit(home).hostname != urlsplit(self.client.site_url).hostname:
            warning = f"WordPress calls itself {home}; consider using that as the site URL."
            check["warning"] = warning
            details.setdefault("warnings", []).append(warning)
        if CORE_NAMESPACE not in namespaces:
            message = "The WordPress REST API answers, but its core routes (wp/v2) are turned off."
            check.update(outcome="failed", stage="rest_disabled", message=message)
            raise _StageFailure("rest_disabled", message)
        return root

    def _check_app_password(self, checks: list[dict[str, Any]], details: dict[str, Any], messages: list[str]) -> None:
        check: dict[str, Any] = {"name": "application_password"}
        checks.append(check)
        if not self.client.has_app_password:
            check.update(outcome="not_configured")
            return
        started = time.monotonic()
        try:
            response = self.client.call(
                "GET",
                f"{CORE_NAMESPACE}/users/me",
                params={"context": "edit", "_fields": "id,name,slug,roles,capabilities"},
                auth="app",
            )
        except PlatformError as exc:
            check.update(outcome="failed", stage=exc.stage, message=exc.message, duration_ms=_ms(started))
            raise _StageFailure(exc.stage, exc.message) from None
        check["duration_ms"] = _ms(started)
        check["status_code"] = response.status_code
        data = response.json_or_none()
        if response.status_code in (401, 403):
            code, wp_message = wp_error(response)
            hint = ""
            if not details.get("application_passwords_available"):
                hint = (
                    " Application Passwords are not available on this site (WordPress turns them off on plain"
                    " http unless the environment type is local, and plugins can disable them)."
                )
            message = (
                f"WordPress rejected the Application Password for user {self.client.username!r} "
                f"(HTTP {response.status_code}{', ' + code if code else ''}).{hint}"
            )
            check.update(outcome="failed", stage="auth", message=message, wp_code=code, wp_message=wp_message)
            raise _StageFailure("auth", message)
        if response.status_code != 200 or not isinstance(data, dict) or "id" not in data:
            message = f"WordPress answered HTTP {response.status_code} to /wp/v2/users/me instead of the user."
            check.update(outcome="failed", stage="http", message=message)
            raise _StageFailure("http", message)
        capabilities: dict[str, Any] = data["capabilities"] if isinstance(data.get("capabilities"), dict) else {}
        user: dict[str, Any] = {
            "id": data.get("id"),
            "name": data.get("name"),
            "slug": data.get("slug"),
            "roles": data.get("roles") if isinstance(data.get("roles"), list) else [],
            "can_edit_posts": bool(capabilities.get("edit_posts")),
            "can_publish_posts": bool(capabilities.get("publish_posts")),
        }
        check.update(outcome="ok", user=user)
        details["authenticated_user"] = user
        messages.append(f"Application Password accepted for {user['name'] or self.client.username}.")
        if not user["can_publish_posts"]:
            warning = "The WordPress user cannot publish posts; publishing from the service will fail."
            check["warning"] = warning
            details.setdefault("warnings", []).append(warning)

    def _check_plugin(
        self, root: RestRoot, checks: list[dict[str, Any]], details: dict[str, Any], messages: list[str]
    ) -> dict[str, Any] | None:
        check: dict[str, Any] = {"name": "plugin"}
        checks.append(check)
        present = PLUGIN_NAMESPACE in root.namespaces
        check["present"] = present
        if not self.client.has_api_key:
            check.update(outcome="not_configured")
            return None
        if not present:
            if self.client.has_app_password:
                # The Application Password is enough for the REST API; the key only matters to the
                # plugin, which is not there to use it.
                check.update(outcome="skipped", message="The IGNY8 Bridge plugin is not active; the API key is unused.")
                messages.append("The IGNY8 Bridge plugin is not active (optional with an Application Password).")
                return None
            message = (
                f"The IGNY8 Bridge plugin is not active on this site (REST namespace {PLUGIN_NAMESPACE} is"
                " missing): install and activate it, or add an Application Password."
            )
            check.update(outcome="failed", stage="plugin", message=message)
            raise _StageFailure("plugin", message)
        started = time.monotonic()
        try:
            response = self.client.call("GET", f"{PLUGIN_NAMESPACE}/status", auth="plugin")
        except PlatformError as exc:
            check.update(outcome="failed", stage=exc.stage, message=exc.message, duration_ms=_ms(started))
            raise _StageFailure(exc.stage, exc.message) from None
        check.update(status_code=response.status_code, duration_ms=_ms(started))
        data = response.json_or_none()
        if response.status_code in (401, 403):
            code, _ = wp_error(response)
            message = (
                f"The IGNY8 Bridge plugin rejected the API key (HTTP {response.status_code}"
                f"{', ' + code if code else ''}): save the site's current API key in the plugin settings."
            )
            check.update(outcome="failed", stage="auth", message=message, wp_code=code)
            raise _StageFailure("auth", message)
        if response.status_code == 404:
            message = f"The IGNY8 Bridge plugin has no status route ({PLUGIN_NAMESPACE}/status): update the plugin."
            check.update(outcome="failed", stage="plugin", message=message)
            raise _StageFailure("plugin", message)
        if response.status_code != 200 or not isinstance(data, dict):
            message = f"The IGNY8 Bridge plugin answered HTTP {response.status_code} to its status route."
            check.update(outcome="failed", stage="plugin" if response.status_code < 500 else "http", message=message)
            raise _StageFailure(check["stage"], message)
        status = {
            key: data.get(key)
            for key in ("plugin_version", "wordpress_version", "php_version", "connected", "integration_id")
            if key in data
        }
        check.update(outcome="ok", **status)
        details["plugin_version"] = status.get("plugin_version")
        messages.append("The IGNY8 Bridge plugin accepted the API key.")
        return data

    def _check_version(
        self,
        root: RestRoot,
        plugin_status: dict[str, Any] | None,
        checks: list[dict[str, Any]],
        details: dict[str, Any],
    ) -> None:
        """WordPress's version, where the site exposes it (informational: never fails the test)."""
        check: dict[str, Any] = {"name": "version"}
        checks.append(check)
        version = plugin_status.get("wordpress_version") if plugin_status else None
        if isinstance(version, str) and version:
            check.update(outcome="ok", source="plugin", version=version)
            details["wordpress_version"] = version
            return
        started = time.monotonic()
        # WordPress prints its version as the generator of the links OPML file and the feed
        # (unless a plugin removes the generator); neither needs pretty permalinks or a login.
        indexed_url = root.index.get("url")
        install_url = indexed_url if isinstance(indexed_url, str) else self.client.site_url
        install_base = install_url.rstrip("/") + "/"
        for source, url, params in (
            ("wp-links-opml.php", install_base + "wp-links-opml.php", None),
            ("feed", self.client.site_base(), {"feed": "rss2"}),
        ):
            try:
                response = self.client.http.request("GET", url, params=params, retry=False)
            except PlatformError:
                continue
            if response.status_code != 200:
                continue
            for pattern in _GENERATOR_PATTERNS:
                match = pattern.search(response.content[:65536])
                if match:
                    version = match.group(1).decode("ascii", errors="replace")
                    check.update(outcome="ok", source=source, version=version, duration_ms=_ms(started))
                    details["wordpress_version"] = version
                    return
        check.update(outcome="not_exposed", duration_ms=_ms(started))
        details["wordpress_version"] = None
