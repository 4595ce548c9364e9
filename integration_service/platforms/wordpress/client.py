"""WordPress client: the REST API (``/wp/v2``, Application Passwords) and the IGNY8 Bridge
plugin's namespace (``/igny8/v1``, the site API key).

Every REST URL is built through the REST root discovered once per client (``/wp-json/``, or
``?rest_route=/`` on sites without pretty permalinks).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..base import ConnectionReport, PlatformError, PostInput, PostNotFound, PostPage, RemotePost
from ..http import TRANSIENT_STATUSES, HttpResponse, HttpSettings, HttpTransport, parse_retry_after
from ..redact import basic_token, safe_wp_code, scrub, secret_variants
from .diagnostics import ConnectionDiagnostics
from .mapping import (
    CORE_NAMESPACE,
    META_CONTENT_ID,
    PLUGIN_NAMESPACE,
    format_wp_datetime,
    post_problem,
    safe_id,
    structure_entry,
    to_remote_post,
    wordpress_status,
    wp_error,
)

logger = logging.getLogger(__name__)

MAX_PER_PAGE = 100  # WordPress caps per_page at 100
LEAN_FIELDS = ("modified_gmt",)  # with "id", always requested
# A scan holds at most this many pages per allowed request (in flight, queued or fetched and not
# yet taken), so memory stays bounded while the caller stores a page: 2 x 100 posts per request.
PAGES_AHEAD_PER_REQUEST = 2
# A WordPress clock slightly behind ours must not hide the post from the lookup's window.
LOOKUP_SLACK = timedelta(minutes=5)
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
class _Probe:
    """What one REST root candidate answered."""

    kind: str  # wordpress | rest_blocked | json_other | html | not_found | server_error | other
    response: HttpResponse | None
    data: Any = None

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None


class WordPressClient:
    """Implements ``PlatformClient`` for WordPress."""

    platform = "wordpress"

    def __init__(
        self,
        site_url: str,
        credentials: Mapping[str, Any] | None,
        settings: HttpSettings | None = None,
        transport: HttpTransport | None = None,
    ) -> None:
        # The REST root is derived from the site's address: a query or fragment has no place there.
        parts = urlsplit(site_url.strip())
        self.site_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        credentials = credentials or {}
        self._api_key = str(credentials.get("api_key") or "") or None
        self._username = str(credentials.get("username") or "") or None
        self._app_password = str(credentials.get("app_password") or "") or None
        self.settings = settings or HttpSettings()
        self.http = transport or HttpTransport(self.settings)
        self._root: RestRoot | None = None
        self._types: dict[str, dict[str, Any]] | None = None
        self._taxonomies: dict[str, dict[str, Any]] | None = None
        self._taxonomy_bases_by_type: dict[str, dict[str, str]] = {}
        self._term_cache: dict[tuple[str, str], int] = {}
        secrets = [self._api_key, self._app_password]
        if self._username and self._app_password:
            secrets.append(basic_token(self._username, self._app_password))
            secrets.append(basic_token(self._username, self._app_password.replace(" ", "")))
        self._secrets = secret_variants(secrets)

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def has_app_password(self) -> bool:
        return bool(self._username and self._app_password)

    @property
    def has_api_key(self) -> bool:
        return bool(self._api_key)

    @property
    def username(self) -> str | None:
        return self._username

    @property
    def incomplete_app_password(self) -> str | None:
        """The half of the Application Password credentials that is missing, if only one is set."""
        if bool(self._username) == bool(self._app_password):
            return None
        return "app_password" if self._username else "username"

    def test_connection(self) -> ConnectionReport:
        """Diagnose the connection step by step (see ``diagnostics``); never raises for a failing site."""
        return ConnectionDiagnostics(self).run()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> WordPressClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def scrub(self, value: Any) -> Any:
        """``value`` with this client's credentials replaced (for reports and messages)."""
        return scrub(value, self._secrets)

    def site_base(self) -> str:
        return self.site_url.rstrip("/") + "/"

    def _auth(self, mode: str | None) -> dict[str, str]:
        if mode == "app" and self.has_app_password:
            assert self._username is not None and self._app_password is not None
            return {"Authorization": "Basic " + basic_token(self._username, self._app_password)}
        if mode == "plugin" and self._api_key:
            return {"X-API-Key": self._api_key}
        return {}

    def _default_auth(self) -> str | None:
        return "app" if self.has_app_password else None

    def call(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        auth: str | None = None,
        retry: bool | None = None,
    ) -> HttpResponse:
        url, query = self.root().url_for(route, params)
        return self.http.request(
            method, url, params=query, json_body=json_body, secret_headers=self._auth(auth), retry=retry
        )

    def _raise_for(self, response: HttpResponse, what: str) -> None:
        """Turn an unsuccessful answer into a PlatformError with a useful message."""
        status = response.status_code
        if status < 400:
            return
        code, message = wp_error(response)
        detail = f" ({code}: {message})" if code and message else (f" ({code})" if code else "")
        if status in (401, 403):
            hint = "" if self.has_app_password else " An Application Password is needed for this."
            raise PlatformError(
                self.scrub(f"WordPress refused {what}: HTTP {status}{detail}.{hint}"), stage="auth", status_code=status
            )
        transient = status in TRANSIENT_STATUSES
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if transient else None
        raise PlatformError(
            self.scrub(f"WordPress answered HTTP {status} to {what}{detail}."),
            stage="http",
            status_code=status,
            transient=transient,
            retry_after=retry_after,
        )

    def _json(self, response: HttpResponse, what: str) -> Any:
        self._raise_for(response, what)
        try:
            return response.json()
        except ValueError:
            raise PlatformError(
                f"WordPress answered {what} with something that is not JSON.",
                stage="http",
                status_code=response.status_code,
            ) from None

    # -- REST root discovery ---------------------------------------------------------------

    def root(self) -> RestRoot:
        if self._root is None:
            self.discover()
        assert self._root is not None
        return self._root

    def _probe(self, url: str, params: dict[str, Any], auth: str | None = None) -> _Probe:
        response = self.http.request("GET", url, params=params, secret_headers=self._auth(auth))
        data = response.json_or_none()
        status = response.status_code
        if status == 200 and isinstance(data, dict) and isinstance(data.get("namespaces"), list):
            return _Probe("wordpress", response, data)
        if isinstance(data, dict) and safe_wp_code(data.get("code")) in REST_BLOCKED_CODES:
            return _Probe("rest_blocked", response, data)
        if status >= 500 or status == 429:
            return _Probe("server_error", response)
        if status in (404, 410):
            return _Probe("not_found", response, data)
        if status == 200 and data is not None:
            return _Probe("json_other", response, data)
        if status == 200:
            return _Probe("html", response)
        return _Probe("other", response, data)

    def discover(self) -> tuple[RestRoot, list[dict[str, Any]]]:
        """Find the REST root (kept for later calls) and the attempts made; raise PlatformError
        with the stage that explains a failure."""
        attempts: list[dict[str, Any]] = []
        candidates = (
            ("pretty", self.site_base() + "wp-json/", {"_fields": INDEX_FIELDS}),
            ("query", self.site_base(), {"rest_route": "/", "_fields": INDEX_FIELDS}),
        )
        probes: list[_Probe] = []
        for style, url, params in candidates:
            probe = self._probe(url, params)  # network errors propagate: no point in a fallback
            if probe.kind == "rest_blocked" and self.has_app_password:
                # Sites that restrict the REST API to logged-in users let an app password in.
                probe = self._probe(url, params, auth="app")
            attempts.append({"style": style, "status_code": probe.status, "answer": probe.kind})
            if probe.kind == "wordpress":
                assert probe.response is not None
                final = probe.response.url.split("?", 1)[0]
                base = final if style == "query" else (final if final.endswith("/") else final + "/")
                self._root = RestRoot(style=style, base=base, index=probe.data)
                return self._root, attempts
            probes.append(probe)
            if probe.kind == "server_error":
                assert probe.response is not None
                failing = (
                    "it is rate-limiting the service" if probe.status == 429 else "WordPress or a plugin is failing"
                )
                raise PlatformError(
                    f"The site answered HTTP {probe.status} at {url}: {failing}.",
                    stage="http",
                    status_code=probe.status,
                    transient=probe.status in TRANSIENT_STATUSES,
                )
        raise self._discovery_failure(probes)

    def _discovery_failure(self, probes: list[_Probe]) -> PlatformError:
        kinds = {probe.kind for probe in probes}
        wordpress_seen = any(self._looks_like_wordpress(probe) for probe in probes)
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

    @staticmethod
    def _looks_like_wordpress(probe: _Probe) -> bool:
        response = probe.response
        if response is None:
            return False
        if "api.w.org" in response.headers.get("Link", ""):
            return True
        if isinstance(probe.data, dict) and str(probe.data.get("code", "")).startswith("rest_"):
            return True
        head = response.content[:200_000]
        return any(mark in head for mark in _WP_FINGERPRINTS)

    # -- connection test -------------------------------------------------------------------

    # -- structure -------------------------------------------------------------------------

    def _load_types(self) -> dict[str, dict[str, Any]]:
        if self._types is None:
            data = self._json(self.call("GET", f"{CORE_NAMESPACE}/types", auth=self._default_auth()), "/wp/v2/types")
            if not isinstance(data, dict):
                raise PlatformError("WordPress answered /wp/v2/types with an unexpected shape.", stage="http")
            self._types = {slug: item for slug, item in data.items() if isinstance(item, dict)}
        return self._types

    def _load_taxonomies(self) -> dict[str, dict[str, Any]]:
        if self._taxonomies is None:
            data = self._json(
                self.call("GET", f"{CORE_NAMESPACE}/taxonomies", auth=self._default_auth()), "/wp/v2/taxonomies"
            )
            if not isinstance(data, dict):
                raise PlatformError("WordPress answered /wp/v2/taxonomies with an unexpected shape.", stage="http")
            self._taxonomies = {slug: item for slug, item in data.items() if isinstance(item, dict)}
        return self._taxonomies

    def fetch_structure(self) -> dict[str, Any]:
        types = self._load_types()
        taxonomies = self._load_taxonomies()
        return {
            "post_types": {slug: structure_entry(slug, item, "taxonomies") for slug, item in types.items()},
            "taxonomies": {slug: structure_entry(slug, item, "types") for slug, item in taxonomies.items()},
        }

    def _type_route(self, content_type: str) -> str:
        types = self._load_types()
        item = types.get(content_type)
        if item is None:
            raise PlatformError(
                f"WordPress has no REST-enabled post type {content_type!r} (known: {', '.join(sorted(types))}).",
                stage="http",
            )
        return f"{item.get('rest_namespace') or CORE_NAMESPACE}/{item.get('rest_base') or content_type}"

    def _taxonomy_bases(self, content_type: str) -> dict[str, str]:
        """rest_base -> taxonomy slug for the taxonomies of a post type (categories/tags for posts).
        Computed once per type: it runs for every post mapped, and a failed taxonomy lookup must
        not be retried over HTTP for each one."""
        bases = self._taxonomy_bases_by_type.get(content_type)
        if bases is None:
            bases = self._taxonomy_bases_by_type[content_type] = self._compute_taxonomy_bases(content_type)
        return bases

    def _compute_taxonomy_bases(self, content_type: str) -> dict[str, str]:
        item = self._load_types().get(content_type) or {}
        slugs = [slug for slug in item.get("taxonomies") or [] if isinstance(slug, str)]
        if not slugs:
            return {}
        try:
            taxonomies = self._load_taxonomies()
        except PlatformError:
            taxonomies = {}
        defaults = {"category": "categories", "post_tag": "tags"}
        return {(taxonomies.get(slug, {}).get("rest_base") or defaults.get(slug, slug)): slug for slug in slugs}

    # -- posts -----------------------------------------------------------------------------

    def _to_remote_post(self, data: dict[str, Any], content_type: str) -> RemotePost:
        bases = self._taxonomy_bases(content_type) if self._types is not None else {}
        return to_remote_post(data, content_type, {*bases, "categories", "tags"})

    def _post_fields(self, content_type: str, edit_context: bool) -> list[str]:
        """Only what ``_to_remote_post`` reads. WordPress skips the work for fields nobody asked
        for; above all it does not render ``content`` through the_content filters when only
        ``content.raw`` is requested (a page of 100 posts: 131 ms -> 36 ms measured on 6.1)."""
        text = "raw" if edit_context else "rendered"
        bases = self._taxonomy_bases(content_type) if self._types is not None else {}
        return [
            "type", "status", "link", "modified_gmt", f"title.{text}", f"content.{text}",
            *sorted({*bases, "categories", "tags"}),
        ]  # fmt: skip

    def list_posts(
        self,
        content_type: str,
        page: int,
        per_page: int = 100,
        modified_after: datetime | None = None,
        fields: list[str] | None = None,
        status: str | list[str] | None = None,
        include: list[str] | None = None,
    ) -> PostPage:
        """One page, in id order. ``status`` defaults to every status but trash when
        authenticated (drafts need a login), else published only. ``include`` limits the page
        to those post ids."""
        route = self._type_route(content_type)
        authenticated = self.has_app_password
        if status is None:
            status = "any" if authenticated else None
        params: dict[str, Any] = {
            "per_page": max(1, min(100, per_page)),
            "page": max(1, page),
            "context": "edit" if authenticated else "view",
            # A unique sort key: MySQL returns rows that tie on the modified time (bulk edits,
            # imports) in a different order on each page, so modified-ordered paging skips posts.
            "orderby": "id",
            "order": "asc",
            "status": ",".join(status) if isinstance(status, list) else status,
        }
        if modified_after is not None:
            params["modified_after"] = format_wp_datetime(modified_after)
        if include:
            params["include"] = ",".join(str(_post_id(value)) for value in include)
        if fields is None:
            fields = self._post_fields(content_type, authenticated)
        if fields:
            params["_fields"] = ",".join(dict.fromkeys(["id", *fields]))
        response = self.call("GET", route, params=params, auth=self._default_auth())
        if response.status_code == 400 and wp_error(response)[0] == "rest_post_invalid_page_number":
            return PostPage(posts=[], total=None, total_pages=None)
        data = self._json(response, f"the {content_type} list")
        if not isinstance(data, list):
            raise PlatformError(f"WordPress answered the {content_type} list with an unexpected shape.", stage="http")
        page_posts: list[RemotePost] = []
        problems: list[dict[str, Any]] = []
        for item in data:
            if not isinstance(item, dict):
                continue
            post = self._to_remote_post(item, content_type)
            problem = post_problem(post)
            if problem:
                problems.append({"external_id": safe_id(item.get("id")), "error": f"malformed post: {problem}"})
            else:
                page_posts.append(post)
        return PostPage(
            posts=page_posts,
            total=_int_header(response, "X-WP-Total"),
            total_pages=_int_header(response, "X-WP-TotalPages"),
            number=max(1, page),
            problems=problems,
        )

    def pages(
        self,
        content_type: str,
        modified_after: datetime | None = None,
        *,
        per_page: int = 100,
        concurrency: int = 1,
        start_page: int = 1,
        fields: list[str] | None = None,
    ) -> Iterator[PostPage]:
        """Every page of a post type in id order (the one paging primitive), fetching up to
        ``concurrency`` pages at once; ``fields`` narrows what each post carries (default: what
        a pull stores). Each page carries its valid posts and the posts it could
        not use (``problems``); a page that could not be read comes with ``error`` set and the scan
        goes on. Transient and auth errors propagate (the job is retried or fails).

        ``page.incremental`` says whether ``modified_after`` was honoured: WordPress before 5.7
        (or a proxy) rejects it with HTTP 400, and the scan falls back to every post.
        ``start_page`` resumes a scan (from a job's checkpoint); past the last page nothing is
        yielded (WordPress answers 400 to a page number beyond the end)."""
        start_page = max(1, start_page)
        try:
            first = self.list_posts(
                content_type, start_page, per_page=per_page, modified_after=modified_after, fields=fields
            )
        except PlatformError as exc:
            if exc.transient or exc.status_code != 400:
                raise
            if start_page > 1:
                return  # resumed past the end: the collection has no more pages
            if modified_after is None:
                raise
            logger.info("%s: modified_after refused (%s); full scan", self.site_url, exc)
            modified_after = None
            first = self.list_posts(content_type, 1, per_page=per_page, fields=fields)
        incremental = modified_after is not None
        first.incremental = incremental
        yield first
        total_pages = first.total_pages
        if total_pages is None:
            # No X-WP-TotalPages: read sequentially until a short page.
            last: PostPage | None = first
            while last is not None and last.error is None and last.listed >= per_page:
                last = self._page_or_error(content_type, last.number + 1, per_page, modified_after, incremental, fields)
                if last is not None:
                    yield last
            return
        if total_pages <= start_page:
            return
        concurrency = max(1, concurrency)
        # Pages requested ahead of the caller: ``concurrency`` in flight (the pool's threads) and
        # as many more queued or fetched and waiting. While the caller stores a page the threads
        # go on fetching, so the site stays busy; counting fetched pages against the in-flight
        # limit left it idle for every page the caller stored.
        ahead = PAGES_AHEAD_PER_REQUEST * concurrency
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="wp-pages") as pool:
            pending: dict[int, Future[PostPage | None]] = {}
            later = iter(range(start_page + 1, total_pages + 1))

            def request_ahead() -> None:
                while len(pending) < ahead and (number := next(later, None)) is not None:
                    pending[number] = pool.submit(
                        self._page_or_error, content_type, number, per_page, modified_after, incremental, fields
                    )

            try:
                request_ahead()
                for number in range(start_page + 1, total_pages + 1):
                    fetched = pending.pop(number).result()
                    request_ahead()  # before handing the page over: the caller's time is fetch time
                    if fetched is None:  # the collection shrank during the scan
                        return
                    yield fetched
            finally:
                # Stopped early (end of a slice, an error, the collection shrank): pages not
                # started yet are not requested.
                for future in pending.values():
                    future.cancel()

    def _page_or_error(
        self,
        content_type: str,
        number: int,
        per_page: int,
        modified_after: datetime | None,
        incremental: bool,
        fields: list[str] | None = None,
    ) -> PostPage | None:
        """A later page; None past the last page (HTTP 400: posts were deleted while scanning)."""
        try:
            page = self.list_posts(
                content_type, number, per_page=per_page, modified_after=modified_after, fields=fields
            )
        except PlatformError as exc:
            if exc.ends_job:
                raise
            if exc.status_code == 400:
                return None
            page = PostPage(posts=[], total=None, total_pages=None, number=number, error=exc)
        page.incremental = incremental
        return page

    def list_modified(self, content_type: str, *, concurrency: int = 1) -> Iterator[PostPage]:
        """Every post of a type with its id and modified time only (``_fields=id,modified_gmt``,
        about 3x faster to list than full posts): what a reconcile compares with its rows."""
        return self.pages(content_type, concurrency=concurrency, fields=list(LEAN_FIELDS))

    def get_posts(self, content_type: str, external_ids: list[str], *, lean: bool = False) -> PostPage:
        """The posts among ``external_ids`` (at most 100: one request with ``include=``) that
        exist; ids WordPress does not list are simply absent. ``lean``: ids and modified times."""
        if len(external_ids) > MAX_PER_PAGE:
            raise ValueError(f"at most {MAX_PER_PAGE} ids per request")
        if not external_ids:
            return PostPage(posts=[], total=0, total_pages=0)
        fields = list(LEAN_FIELDS) if lean else None
        return self.list_posts(content_type, 1, per_page=MAX_PER_PAGE, fields=fields, include=external_ids)

    def find_pushed_post(self, post: PostInput, since: datetime | None) -> str | None:
        """The id of a post a push of ``post`` created earlier (its worker died before the id was
        stored), or None. With the IGNY8 Bridge plugin: the post whose ``_igny8_content_id`` is
        ``post.content_id`` (``GET igny8/v1/posts?content_id=``). Without it, core REST cannot
        query that meta: the post of this type with exactly this title modified since ``since``
        (the push intent's time) is taken, the oldest when several are."""
        if post.content_id is not None and self.has_api_key and PLUGIN_NAMESPACE in self.root().namespaces:
            response = self.call(
                "GET", f"{PLUGIN_NAMESPACE}/posts", params={"content_id": post.content_id}, auth="plugin"
            )
            if response.status_code != 404:  # 404: a plugin version without the route
                data = self._json(response, "the IGNY8 Bridge post lookup")
                ids = sorted(
                    int(item["id"])
                    for item in (data if isinstance(data, list) else [])
                    if isinstance(item, dict)
                    and isinstance(item.get("id"), int)
                    and item.get("type") in (None, post.content_type)
                )
                return str(ids[0]) if ids else None
        if since is None or not post.title.strip():
            return None  # no window or no title to recognise the post by
        params: dict[str, Any] = {
            "search": post.title,
            "modified_after": format_wp_datetime(since - LOOKUP_SLACK),
            "status": "any",
            "context": "edit",
            "per_page": MAX_PER_PAGE,
            "orderby": "id",
            "order": "asc",
            "_fields": "id,title",
        }
        route = self._type_route(post.content_type)
        found = self._json(self.call("GET", route, params=params, auth="app"), f"the {post.content_type} search")
        for item in found if isinstance(found, list) else []:
            title = item.get("title") if isinstance(item, dict) else None
            raw = title.get("raw") if isinstance(title, dict) else None
            if raw == post.title and isinstance(item.get("id"), int):
                return str(item["id"])
        return None

    def get_post(self, content_type: str, external_id: str) -> RemotePost:
        route = f"{self._type_route(content_type)}/{_post_id(external_id)}"
        context = "edit" if self.has_app_password else "view"
        response = self.call("GET", route, params={"context": context}, auth=self._default_auth())
        if response.status_code in (404, 410):
            raise PostNotFound(f"WordPress has no {content_type} {external_id}.")
        data = self._json(response, f"{content_type} {external_id}")
        if not isinstance(data, dict):
            raise PlatformError(f"WordPress answered {content_type} {external_id} with an unexpected shape.")
        return self._to_remote_post(data, content_type)

    def create_post(self, post: PostInput) -> RemotePost:
        self._require_app_password("create posts")
        body = self._post_body(post)
        response = self.call(
            "POST", self._type_route(post.content_type), params={"context": "edit"}, json_body=body, auth="app"
        )
        data = self._json(response, f"creating a {post.content_type}")
        return self._to_remote_post(data, post.content_type)

    def update_post(self, external_id: str, post: PostInput) -> RemotePost:
        self._require_app_password("update posts")
        body = self._post_body(post)
        route = f"{self._type_route(post.content_type)}/{_post_id(external_id)}"
        # Not retried here (only GETs are): a repeated update would fire WordPress's save hooks
        # again; the caller sees PlatformError.transient and retries the job instead.
        response = self.call("POST", route, params={"context": "edit"}, json_body=body, auth="app")
        if response.status_code in (404, 410):
            raise PostNotFound(f"WordPress has no {post.content_type} {external_id}.")
        data = self._json(response, f"updating {post.content_type} {external_id}")
        return self._to_remote_post(data, post.content_type)

    def _require_app_password(self, what: str) -> None:
        if not self.has_app_password:
            raise PlatformError(
                f"An Application Password (credentials username and app_password) is needed to {what}.", stage="auth"
            )

    def _post_body(self, post: PostInput) -> dict[str, Any]:
        body: dict[str, Any] = {
            "title": post.title,
            "content": post.content_html,
            "status": wordpress_status(post.status),
        }
        if post.taxonomies:
            bases = self._taxonomy_bases(post.content_type)
            slug_to_base = {slug: base for base, slug in bases.items()}
            for key, values in post.taxonomies.items():
                base = key if key in bases else slug_to_base.get(key, key)
                body[base] = self._term_ids(base, list(values or []))
        meta = dict(post.meta)
        if post.content_id is not None:
            meta[META_CONTENT_ID] = post.content_id
        if meta:
            body["meta"] = meta
        return body

    # -- terms -----------------------------------------------------------------------------

    def _taxonomy_route(self, rest_base: str) -> str:
        try:
            taxonomies = self._load_taxonomies()
        except PlatformError:
            taxonomies = {}
        for item in taxonomies.values():
            if item.get("rest_base") == rest_base:
                return f"{item.get('rest_namespace') or CORE_NAMESPACE}/{rest_base}"
        return f"{CORE_NAMESPACE}/{rest_base}"

    def _term_ids(self, rest_base: str, values: list[Any]) -> list[int]:
        """Term ids for ids or names; names are looked up and created when missing."""
        ids: list[int] = []
        for value in values:
            if isinstance(value, bool):
                continue
            if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
                ids.append(int(value))
            elif isinstance(value, str) and value.strip():
                ids.append(self._term_id(rest_base, value.strip()))
        return list(dict.fromkeys(ids))

    def _term_id(self, rest_base: str, name: str) -> int:
        cache_key = (rest_base, name.lower())
        if cache_key in self._term_cache:
            return self._term_cache[cache_key]
        route = self._taxonomy_route(rest_base)
        found = self._json(
            self.call(
                "GET",
                route,
                params={"search": name, "per_page": 100, "_fields": "id,name,slug"},
                auth=self._default_auth(),
            ),
            f"the {rest_base} search",
        )
        for term in found if isinstance(found, list) else []:
            if isinstance(term, dict) and (
                html.unescape(str(term.get("name", ""))).lower() == name.lower()
                or str(term.get("slug", "")).lower() == name.lower()
            ):
                self._term_cache[cache_key] = int(term["id"])
                return self._term_cache[cache_key]
        response = self.call("POST", route, json_body={"name": name}, auth="app")
        data = response.json_or_none()
        if response.status_code == 400 and isinstance(data, dict) and data.get("code") == "term_exists":
            term_id = (data.get("data") or {}).get("term_id")
            if isinstance(term_id, int):
                self._term_cache[cache_key] = term_id
                return term_id
        created = self._json(response, f"creating the {rest_base} term {name!r}")
        self._term_cache[cache_key] = int(created["id"])
        return self._term_cache[cache_key]


def _int_header(response: HttpResponse, name: str) -> int | None:
    value = response.headers.get(name, "")
    return int(value) if value.strip().isdigit() else None


def _post_id(external_id: str | int) -> int:
    try:
        value = int(str(external_id).strip())
    except ValueError:
        raise PostNotFound(f"{external_id!r} is not a WordPress post id.") from None
    if value <= 0:
        raise PostNotFound(f"{external_id!r} is not a WordPress post id.")
    return value
