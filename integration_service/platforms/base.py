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
    ) -> None:
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.status_code = status_code
        self.transient = transient
        self.retry_after = retry_after


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


@dataclass
class PostPage:
    posts: list[RemotePost]
    total: int | None  # X-WP-Total
    total_pages: int | None  # X-WP-TotalPages


@dataclass
class PostInput:
    """What the service pushes to the platform."""

    content_type: str
    title: str
    content_html: str
    status: str  # the platform's status (publish, pending, draft)
    taxonomies: dict[str, list[Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


class PlatformClient(Protocol):
    def test_connection(self) -> ConnectionReport: ...

    def fetch_structure(self) -> dict[str, Any]:
        """{"post_types": {slug: {...,"rest_base","taxonomies"}}, "taxonomies": {slug: {...}}}"""
        ...

    def list_posts(
        self,
        content_type: str,
        page: int,
        per_page: int = 100,
        modified_after: datetime | None = None,
        fields: list[str] | None = None,
        status: str | list[str] | None = None,
    ) -> PostPage:
        """One page, oldest modification first (``modified_after`` is exclusive). ``status``
        defaults to every status but trash when the client can authenticate, else published.
        A page past the end is empty."""
        ...

    def iter_posts(
        self,
        content_type: str,
        modified_after: datetime | None = None,
        per_page: int = 100,
        fields: list[str] | None = None,
        status: str | list[str] | None = None,
    ) -> Iterator[PostPage]: ...

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

    def close(self) -> None: ...
