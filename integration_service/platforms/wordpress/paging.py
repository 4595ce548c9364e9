"""Scanning a post type page by page (``pages``, the one paging primitive, and
``list_modified``): in id order, several pages in flight at once with a bounded look-ahead,
resumable from a page number, falling back to a full scan where ``modified_after`` is refused,
and going on past a page that could not be read."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from ..base import PlatformError, PostPage
from .posts import LEAN_FIELDS, PostsMixin

logger = logging.getLogger(__name__)

# A scan holds at most this many pages per allowed request (in flight, queued or fetched and not
# yet taken), so memory stays bounded while the caller stores a page: 2 x 100 posts per request.
PAGES_AHEAD_PER_REQUEST = 2


class PagingMixin(PostsMixin):
    """Every page of a post type, fetched ahead of the caller (see ``pages``)."""

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
