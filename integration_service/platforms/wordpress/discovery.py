"""Where a site's REST API lives: ``RestRoot`` (the root discovered once per client and how
routes are addressed under it: ``/wp-json/<route>``, or ``?rest_route=/<route>`` on sites without
pretty permalinks), the probes of the two candidates, and the failure that explains why no root
answered (REST API disabled or restricted, not WordPress, a failing site).

It speaks to the site through the transport it is given, not through the client, so the client
and the connection checklist (``diagnostics``) both build on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..base import PlatformError
from ..http import HttpTransport
from ..http_types import TRANSIENT_STATUSES, HttpResponse
from ..redact import safe_wp_code

INDEX_FIELDS = "name,description,url,home,gmt_offset,timezone_string,namespaces,authentication"
REST_BLOCKED_CODES = frozenset(
    {
        "rest_disabled",
        "rest_cannot_access",
        "rest_login_required",
        "rest_not_logged_in",
        "rest_forbidden",
        "rest_authentication_required",
        "rest_api_disabled",
    }
)
_WP_FINGERPRINTS = (b"/wp-content/", b"/wp-includes/", b'content="WordPress', b"wp-json")


@dataclass(frozen=True)
class RestRoot:
    """Where the REST API lives and how routes are addressed."""

    style: str  # "pretty" (/wp-json/<route>) or "query" (?rest_route=/<route>)
    base: str  # pretty: the API root ending in "/"; query: the URL that takes ?rest_route=
    index: dict[str, Any]

    def url_for(self, route: str, params: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        route = route.strip("/")
        query = {key: value for key, value in (params or {}).items() if value is not None}
        if self.style == "pretty":
            return self.base + route, query
        return self.base, {"rest_route": "/" + route, **query}

    @property
    def namespaces(self) -> list[str]:
        value = self.index.get("namespaces")
        return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


@dataclass
class Probe:
    """What one REST root candidate answered."""

    kind: str  # wordpress | rest_blocked | json_other | html | not_found | server_error | other
    response: HttpResponse | None
    data: Any = None

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None


def probe_candidate(http: HttpTransport, url: str, params: dict[str, Any], headers: Mapping[str, str]) -> Probe:
    """What one REST root candidate answers (``headers``: the credentials to send, if any)."""
    response = http.request("GET", url, params=params, secret_headers=headers)
    data = response.json_or_none()
    status = response.status_code
    if status == 200 and isinstance(data, dict) and isinstance(data.get("namespaces"), list):
        return Probe("wordpress", response, data)
    if isinstance(data, dict) and safe_wp_code(data.get("code")) in REST_BLOCKED_CODES:
        return Probe("rest_blocked", response, data)
    if status >= 500 or status == 429:
        return Probe("server_error", response)
    if status in (404, 410):
        return Probe("not_found", response, data)
    if status == 200 and data is not None:
        return Probe("json_other", response, data)
    if status == 200:
        return Probe("html", response)
    return Probe("other", response, data)


def discover(
    http: HttpTransport, site_base: str, app_headers: Mapping[str, str]
) -> tuple[RestRoot, list[dict[str, Any]]]:
    """Find the REST root of the site at ``site_base`` and the attempts made; raise PlatformError
    with the stage that explains a failure. ``app_headers``: the Application Password's
    Authorization header (empty without one), tried where the REST API is restricted."""
    attempts: list[dict[str, Any]] = []
    candidates = (
        ("pretty", site_base + "wp-json/", {"_fields": INDEX_FIELDS}),
        ("query", site_base, {"rest_route": "/", "_fields": INDEX_FIELDS}),
    )
    probes: list[Probe] = []
    for style, url, params in candidates:
        answer = probe_candidate(http, url, params, {})  # network errors propagate: no point in a fallback
        if answer.kind == "rest_blocked" and app_headers:
            # Sites that restrict the REST API to logged-in users let an app password in.
            answer = probe_candidate(http, url, params, app_headers)
        attempts.append({"style": style, "status_code": answer.status, "answer": answer.kind})
        if answer.kind == "wordpress":
            assert answer.response is not None
            final = answer.response.url.split("?", 1)[0]
            base = final if style == "query" else (final if final.endswith("/") else final + "/")
            return RestRoot(style=style, base=base, index=answer.data), attempts
        probes.append(answer)
        if answer.kind == "server_error":
            assert answer.response is not None
            failing = "it is rate-limiting the service" if answer.status == 429 else "WordPress or a plugin is failing"
            raise PlatformError(
                f"The site answered HTTP {answer.status} at {url}: {failing}.",
                stage="http",
                status_code=answer.status,
                transient=answer.status in TRANSIENT_STATUSES,
            )
    raise discovery_failure(probes)


def discovery_failure(probes: list[Probe]) -> PlatformError:
    """The error that explains why none of ``probes`` found the REST API."""
    kinds = {probe.kind for probe in probes}
    wordpress_seen = any(_looks_like_wordpress(probe) for probe in probes)
    if "rest_blocked" in kinds:
        blocked = next(probe for probe in probes if probe.kind == "rest_blocked")
        code = safe_wp_code(blocked.data.get("code")) if isinstance(blocked.data, dict) else None
        return PlatformError(
            f"The WordPress REST API is disabled or restricted on this site (HTTP {blocked.status}, {code}).",
            stage="rest_disabled",
            status_code=blocked.status,
        )
    if "json_other" in kinds:
        return PlatformError(
            "The site answers JSON at /wp-json/, but it is not the WordPress REST API.", stage="not_wordpress"
        )
    if probes and probes[0].kind in ("not_found", "other"):
        first = probes[0]
        hint = "" if wordpress_seen else " Check that the URL is the WordPress site's address."
        return PlatformError(
            f"No WordPress REST API at /wp-json/ (HTTP {first.status}) or ?rest_route=/: "
            f"the REST API looks disabled.{hint}",
            stage="rest_disabled",
            status_code=first.status,
        )
    if wordpress_seen:
        return PlatformError(
            "This looks like WordPress, but its REST API does not answer (pages come back instead).",
            stage="rest_disabled",
        )
    return PlatformError(
        "The site answers with web pages, not the WordPress REST API: this does not look like WordPress.",
        stage="not_wordpress",
    )


def _looks_like_wordpress(probe: Probe) -> bool:
    response = probe.response
    if response is None:
        return False
    if "api.w.org" in response.headers.get("Link", ""):
        return True
    if isinstance(probe.data, dict) and str(probe.data.get("code", "")).startswith("rest_"):
        return True
    head = response.content[:200_000]
    return any(mark in head for mark in _WP_FINGERPRINTS)
