"""The plain types of outbound HTTP: ``HttpSettings`` (timeouts, retries, limits, the deadline and
politeness settings), ``HttpResponse`` (a fully read answer), the statuses that count as
transient, and ``parse_retry_after``. No I/O here: the transport (``http``) and the WordPress
client both build on these."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from requests.structures import CaseInsensitiveDict

from .base import PlatformError
from .deadline import Deadline
from .politeness import PolitenessSettings

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


class ResponseTooLarge(PlatformError):
    """The body is over ``max_response_bytes`` (announced or read)."""


class BodySink(Protocol):
    """Where a streamed body goes instead of memory (``request(sink=...)``): ``reset`` before
    each attempt, then ``write`` per chunk; ``write`` may raise PlatformError to stop reading."""

    def reset(self) -> None: ...

    def write(self, chunk: bytes) -> object: ...


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 3
    max_response_bytes: int = 20 * 1024 * 1024
    allow_private: bool = False
    pool_size: int = 4
    # A Retry-After longer than this is not slept through: the error goes to the caller
    # (a sync job can be rescheduled; a request thread should not block for minutes).
    max_retry_wait: float = 30.0
    # One budget for everything this transport does (a connection test): every timeout and
    # wait below is cut to the time left, and a request past it fails with stage ``timeout``.
    deadline: Deadline | None = None
    # Per-site limits shared by every client in the process, and through Redis by every worker.
    politeness: PolitenessSettings = field(default_factory=PolitenessSettings)
    # Whose site this client talks to (``client_for`` sets it): the label of the rate-limit
    # metric. Limits stay keyed by host:port; the metric must not carry a customer's host.
    site_id: int | None = None
    # Where a site's REST root, post types and taxonomies are remembered between syncs
    # (``wordpress.site_cache``): Redis (REDIS_URL), shared by every worker, or this process.
    structure_cache_url: str | None = None
    structure_cache_seconds: float = 21600.0  # WP_STRUCTURE_CACHE_SECONDS; 0: not remembered

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HttpSettings:
        """The settings declared in ``config.Config`` (an app's ``app.config``)."""
        politeness = PolitenessSettings.from_config(config)
        return cls(
            connect_timeout=float(config["WP_CONNECT_TIMEOUT"]),
            read_timeout=float(config["WP_READ_TIMEOUT"]),
            max_retries=int(config["WP_MAX_RETRIES"]),
            max_response_bytes=int(config["WP_MAX_RESPONSE_BYTES"]),
            allow_private=bool(config["ALLOW_PRIVATE_TARGETS"]),
            pool_size=politeness.concurrency,
            max_retry_wait=float(config["WP_MAX_RETRY_WAIT"]),
            politeness=politeness,
            structure_cache_url=config.get("REDIS_URL") or None,
            structure_cache_seconds=float(config["WP_STRUCTURE_CACHE_SECONDS"]),
        )


@dataclass
class HttpResponse:
    """A fully read (size-capped) response."""

    status_code: int
    headers: CaseInsensitiveDict
    content: bytes
    url: str  # the final URL, after redirects
    elapsed_ms: int
    redirects: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The parsed JSON body; ``ValueError`` when it is not JSON."""
        if not self.content:
            raise ValueError("empty body")
        text = self.content.decode("utf-8-sig", errors="replace")
        return json.loads(text)

    def json_or_none(self) -> Any:
        try:
            return self.json()
        except ValueError:
            return None

    def text(self, limit: int | None = None) -> str:
        data = self.content if limit is None else self.content[:limit]
        return data.decode("utf-8", errors="replace")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
