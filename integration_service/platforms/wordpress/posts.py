"""Posts of any post type: one page of a listing (``list_posts``, in id order), posts by id
(``get_posts``, ``get_post``), writes (``create_post``, ``update_post`` and the body they send,
terms resolved through ``terms``, publishing fields through ``publishing``), and the lookup of a
post a push created but did not record (``find_pushed_post``). Scanning every page is ``paging``'s."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..base import PlatformError, PostInput, PostNotFound, PostPage, RemotePost
from ..http_types import HttpResponse
from .mapping import (
    META_CONTENT_ID,
    PLUGIN_NAMESPACE,
    format_wp_datetime,
    post_problem,
    safe_id,
    to_remote_post,
    wordpress_status,
    wp_error,
)
from .publishing import READ_FIELDS, PublishingMixin, publishing_values
from .terms import TermsMixin

MAX_PER_PAGE = 100  # WordPress caps per_page at 100
LEAN_FIELDS = ("modified_gmt",)  # with "id", always requested
# A WordPress clock slightly behind ours must not hide the post from the lookup's window.
LOOKUP_SLACK = timedelta(minutes=5)


class PostsMixin(TermsMixin, PublishingMixin):
    """Reading and writing posts through the post type's route (see ``structure``); the
    publishing fields through ``publishing``."""

    def _to_remote_post(self, data: dict[str, Any], content_type: str) -> RemotePost:
        bases = self._taxonomy_bases(content_type) if self._types is not None else {}
        post = to_remote_post(data, content_type, {*bases, "categories", "tags"})
        post.publishing = publishing_values(data)
        return post

    def _post_fields(self, content_type: str, edit_context: bool) -> list[str]:
        """Only what ``_to_remote_post`` reads. WordPress skips the work for fields nobody asked
        for; above all it does not render ``content`` through the_content filters when only
        ``content.raw`` is requested (a page of 100 posts: 131 ms -> 36 ms measured on 6.1)."""
        text = "raw" if edit_context else "rendered"
        bases = self._taxonomy_bases(content_type) if self._types is not None else {}
        # The excerpt only raw: the rendered one is made up from the body when none was written.
        excerpt = ["excerpt.raw"] if edit_context else []
        return [
            "type", "status", "link", "modified_gmt", f"title.{text}", f"content.{text}",
            *sorted({*bases, "categories", "tags"}), *excerpt, *READ_FIELDS,
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
        self.resolve_featured_images(page_posts)  # one media request for the page
        return PostPage(
            posts=page_posts,
            total=_int_header(response, "X-WP-Total"),
            total_pages=_int_header(response, "X-WP-TotalPages"),
            number=max(1, page),
            problems=problems,
        )

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
        post = self._to_remote_post(data, content_type)
        self.resolve_featured_images([post])
        return post

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
        body.update(self._publishing_body(post))
        return body


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
