"""The WordPress client's plumbing, the base its concerns (structure, terms, posts, paging) build
on: the credentials (Application Password for ``/wp/v2``, the site API key for the IGNY8 Bridge
plugin's ``/igny8/v1``) and the headers they make, the REST root (discovered once, see
``discovery``), ``call`` (every REST request goes through it), and the mapping of unsuccessful
answers to ``PlatformError`` (``_raise_for``, ``_json``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any, Self
from urllib.parse import urlsplit, urlunsplit

from ..base import PlatformError
from ..http import HttpTransport
from ..http_types import TRANSIENT_STATUSES, HttpResponse, HttpSettings, parse_retry_after
from ..redact import basic_token, scrub, secret_variants
from . import discovery, site_cache
from .discovery import RestRoot
from .mapping import wp_error_detail


class WordPressRest:
    """Credentials, the REST root and ``call`` for one site; each concern's mixin adds its
    per-client caches through ``_init_caches``."""

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
        secrets = [self._api_key, self._app_password]
        if self._username and self._app_password:
            secrets.append(basic_token(self._username, self._app_password))
            secrets.append(basic_token(self._username, self._app_password.replace(" ", "")))
        self._secrets = secret_variants(secrets)
        self._init_caches()

    def _init_caches(self) -> None:
        """The per-client state learned from the site; a concern that keeps some extends this."""
        self._root: RestRoot | None = None
        self._shape_cached = False  # root, types or taxonomies came from site_cache
        self._remembered: site_cache.SiteShape | None = None  # read once per client (one HMGET)

    @property
    def _shapes(self) -> site_cache.Shapes:
        return site_cache.shapes_for(self.settings.structure_cache_url, self.settings.structure_cache_seconds)

    def remembered_shape(self) -> site_cache.SiteShape:
        """What site_cache holds for this site and credentials, read once per client (a job):
        the root, types and taxonomies then cost one round trip between them."""
        if self._remembered is None:
            self._remembered = self._shapes.get(self.cache_key) or site_cache.SiteShape()
        return self._remembered

    def remember_shape(self, **parts: Any) -> None:
        self._shapes.remember(self.cache_key, **parts)

    def _drop_remembered(self) -> None:
        self._shapes.forget(self.cache_key)
        self._remembered = site_cache.SiteShape()  # what is left of this job asks the site

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

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
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
        data: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """One REST call; ``data`` and ``headers``: a raw body and its headers (media uploads)."""
        url, query = self.root().url_for(route, params)
        response = self.http.request(
            method,
            url,
            params=query,
            json_body=json_body,
            data=data,
            headers=headers,
            secret_headers=self._auth(auth),
            retry=retry,
        )
        if response.status_code == 404 and self._shape_cached:
            # The remembered root or route may be out of date: every next client asks the site again.
            self._drop_remembered()
        return response

    def _raise_for(self, response: HttpResponse, what: str) -> None:
        """Turn an unsuccessful answer into a PlatformError with a useful message."""
        status = response.status_code
        if status < 400:
            return
        _code, detail = wp_error_detail(response)
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

    def _require_app_password(self, what: str) -> None:
        if not self.has_app_password:
            raise PlatformError(
                f"An Application Password (credentials username and app_password) is needed to {what}.", stage="auth"
            )

    # -- REST root discovery (see ``discovery``) ---------------------------------------------

    @property
    def cache_key(self) -> tuple[str, str]:
        return self.site_base(), self._username or ""

    def forget_site_shape(self) -> None:
        """Ask the site again for its root, types and taxonomies (a reconcile starts with this)."""
        self._drop_remembered()
        self._shape_cached = False

    def root(self) -> RestRoot:
        if self._root is None:
            cached = self.remembered_shape().root
            if cached is not None:
                self._root, self._shape_cached = cached, True
                return cached
            self.discover()
        assert self._root is not None
        return self._root

    def discover(self) -> tuple[RestRoot, list[dict[str, Any]]]:
        """Find the REST root (kept for later calls) and the attempts made; raise PlatformError
        with the stage that explains a failure."""
        self._root, attempts = discovery.discover(self.http, self.site_base(), self._auth("app"))
        self.remember_shape(root=self._root)
        # A new root starts a new entry: types and taxonomies remembered with the old one are
        # read from the site again.
        self._remembered = site_cache.SiteShape(root=self._root)
        return self._root, attempts
