"""The small interface every platform client implements, and the errors it raises.

Services talk to platforms only through this interface; ``registry.client_for(integration)``
returns the client for an integration's platform.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class PlatformError(Exception):
    """A call to a platform failed.

    ``stage`` names where it failed, with the contract's values (``dns``, ``connect``, ``tls``,
    ``timeout``, ``http``, ``not_wordpress``, ``rest_disabled``, ``auth``, ``plugin``).
    ``transient`` errors (connection errors, timeouts, 429/502/503/504) may be retried;
    others (auth, validation, 404) must not be.
    """

    def __init__(
        self,
        message: str,
        *,
        stage: str = "http",
        status_code: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        connection_refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        # Nothing listened at the address (ECONNREFUSED): a wrong URL or a stopped server.
        self.connection_refused = connection_refused
        self.stage = stage
        self.status_code = status_code
        self.transient = transient
        self.retry_after = retry_after

    @property
    def ends_job(self) -> bool:
        """Retrying the job (transient) or fixing the credentials (auth) is the only way on:
        a scan or push stops here instead of naming one item and going on."""
        return self.transient or self.stage == "auth" or self.status_code in (401, 403)


class PostNotFound(PlatformError):
    """The post does not exist (any more) on the platform."""

    def __init__(self, message: str = "The post does not exist.") -> None:
        super().__init__(message, stage="http", status_code=404)


@dataclass
class ConnectionReport:
    success: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)  # includes "stage" when it failed


@dataclass
class RemotePost:
    """One post as the platform has it, normalised."""

    external_id: str
    content_type: str  # WordPress post type slug: post, page, ...
    title: str
    content_html: str
    status: str  # the platform's status: publish, draft, pending, private, future, trash
    url: str | None
    modified_gmt: datetime | None
    taxonomies: dict[str, list[Any]] = field(default_factory=dict)  # {"categories": [ids], "tags": [ids]}
    raw: dict[str, Any] = field(default_factory=dict)
    content_status: str = "draft"  # the status as the platform's Content has it (published, review, draft)
    # The publishing fields read back (``Content`` columns: excerpt, slug, publish_at, author,
    # format, sticky, comment_status, featured_image, seo) and ``featured_media`` ({"id", "url"}
    # of the featured image's attachment, or None); empty when the listing did not ask for them.
    publishing: dict[str, Any] = field(default_factory=dict)


@dataclass
class PostPage:
    """One page of a listing: the posts that can be stored, and the ones that cannot."""

    posts: list[RemotePost]
    total: int | None  # X-WP-Total
    total_pages: int | None  # X-WP-TotalPages
    number: int = 1
    problems: list[dict[str, Any]] = field(default_factory=list)  # {"external_id", "error"} per unusable post
    error: PlatformError | None = None  # the page could not be read (the scan goes on without it)
    incremental: bool = False  # listed with modified_after (only the posts changed since)

    @property
    def listed(self) -> int:
        """How many posts the platform listed on the page, usable or not."""
        return len(self.posts) + len(self.problems)


@dataclass
class PostInput:
    """What the service pushes to the platform."""

    content_type: str
    title: str
    content_html: str
    status: str  # Content.status (published, review, draft); the client maps it to its own
    taxonomies: dict[str, list[Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    content_id: int | None = None  # the platform content this post mirrors (stored with the post)
    # Publishing (None: not sent, WordPress keeps or picks its own). The client leaves out what
    # the post type does not support (its REST schema says).
    excerpt: str | None = None
    slug: str | None = None
    publish_at: datetime | None = None  # date_gmt; a future one with status published schedules
    author: str | None = None  # a user id (digits) or a login, resolved by the client
    format: str | None = None
    sticky: bool | None = None
    comment_status: str | None = None
    featured_media: int | None = None  # attachment id; 0 removes the featured image
    seo: dict[str, Any] | None = None  # sent as the companion plugin's igny8_seo field


class PlatformClient(Protocol):
    """What the sync engine and the connection test use. A client holds a pooled session: use
    it as a context manager (``with client_for(integration) as client:``)."""

    def __enter__(self) -> PlatformClient: ...

    def __exit__(self, *exc_info: Any) -> None: ...

    def test_connection(self) -> ConnectionReport: ...

    def fetch_structure(self) -> dict[str, Any]:
        """{"post_types": {slug: {...,"rest_base","taxonomies"}}, "taxonomies": {slug: {...}}}"""
        ...

    def pages(
        self,
        content_type: str,
        modified_after: datetime | None = None,
        *,
        per_page: int = 100,
        concurrency: int = 1,
        start_page: int = 1,
    ) -> Iterator[PostPage]:
        """Every page of a content type, in id order (``modified_after`` is exclusive; a client
        that cannot filter by it lists everything and says so with ``page.incremental``). Pages
        carry valid posts and per-post problems; an unreadable page carries ``error``.
        ``start_page`` resumes a scan; past the last page nothing is yielded."""
        ...

    def list_modified(self, content_type: str, *, concurrency: int = 1) -> Iterator[PostPage]:
        """Like ``pages`` without a filter, but each post carries only its id and modified time."""
        ...

    def get_posts(self, content_type: str, external_ids: list[str], *, lean: bool = False) -> PostPage:
        """The existing posts among at most 100 ids, in one request (``lean``: id and modified only)."""
        ...

    def find_pushed_post(self, post: PostInput, since: datetime | None) -> str | None:
        """The id of the post an interrupted push of ``post`` (started at ``since``) created, or None."""
        ...

    def get_post(self, content_type: str, external_id: str) -> RemotePost:
        """Raises PostNotFound when the post does not exist."""
        ...

    def create_post(self, post: PostInput) -> RemotePost:
        """Taxonomy values may be term ids or names (names are looked up, created when missing);
        keys are REST bases (``categories``, ``tags``) or taxonomy slugs (``category``)."""
        ...

    def update_post(self, external_id: str, post: PostInput) -> RemotePost:
        """Raises PostNotFound when the post does not exist."""
        ...

    def supports_seo(self) -> bool:
        """Whether ``PostInput.seo`` reaches the site (WordPress: the companion plugin is active)."""
        ...
