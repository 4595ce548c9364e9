"""The WordPress media library: upload an image (``POST /wp/v2/media``, raw body), set its
alt text / caption / title, and find an attachment an interrupted upload may have made.

Used by ``sync/media.py``; a standalone class that takes the client (not a mixin of it), and
goes through its ``call`` (the same SSRF-checked, polite, size-capped transport as every other
site call, and the client's credentials).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any
from urllib.parse import quote, urlsplit

from ..base import PlatformError
from ..http import TRANSIENT_STATUSES, HttpResponse, parse_retry_after
from .client import WordPressClient
from .mapping import CORE_NAMESPACE, PLUGIN_NAMESPACE, format_wp_datetime, wp_error_detail

logger = logging.getLogger(__name__)

MEDIA_ROUTE = f"{CORE_NAMESPACE}/media"
PLUGIN_MEDIA_ROUTE = f"{PLUGIN_NAMESPACE}/media"
SHA_HEADER = "X-IGNY8-Source-SHA256"
SOURCE_URL_HEADER = "X-IGNY8-Source-URL"
ATTACHMENT_FIELDS = "id,source_url,media_details.width,media_details.height,media_details.file,alt_text,caption,title"
# WordPress refuses a file it will not take with these codes (an SVG is a 500 sideload error):
# retrying cannot help, so they fail the image, not the job.
PERMANENT_UPLOAD_CODES = frozenset(
    {"rest_upload_sideload_error", "rest_upload_file_too_big", "rest_upload_limited_space", "rest_upload_unknown_error"}
)
# A WordPress clock slightly behind ours must not hide the attachment from the lookup's window.
LOOKUP_SLACK = timedelta(minutes=5)


class MediaRejected(PlatformError):
    """WordPress will not take this file (type, size, quota): that image fails for good."""


@dataclass
class Attachment:
    id: int
    url: str
    width: int | None = None
    height: int | None = None
    fields: dict[str, str] = field(default_factory=dict)  # alt_text, caption, title as stored (raw)
    file: str | None = None  # media_details.file ("2026/12/name-abc.png")


def attachment_from_json(data: Any) -> Attachment | None:
    """An attachment from REST JSON (edit context) or the plugin's lookup; None when unusable."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), int) or not isinstance(data.get("source_url"), str):
        return None
    details: dict[str, Any] = data["media_details"] if isinstance(data.get("media_details"), dict) else {}
    fields: dict[str, str] = {}
    for key in ("alt_text", "caption", "title"):
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("raw") if isinstance(value.get("raw"), str) else value.get("rendered")
        if isinstance(value, str):
            fields[key] = value
    return Attachment(
        id=data["id"],
        url=data["source_url"],
        width=details.get("width") if isinstance(details.get("width"), int) else None,
        height=details.get("height") if isinstance(details.get("height"), int) else None,
        fields=fields,
        file=details.get("file") if isinstance(details.get("file"), str) else None,
    )


class WordPressMedia:
    """Media calls for one ``WordPressClient`` (its REST root, transport and credentials)."""

    def __init__(self, client: WordPressClient) -> None:
        self.client = client

    @property
    def has_plugin_lookup(self) -> bool:
        return self.client.has_api_key and PLUGIN_NAMESPACE in self.client.root().namespaces

    def upload(
        self,
        body: IO[bytes],
        *,
        filename: str,
        mime: str,
        sha256: str,
        source_url: str,
        alt_text: str | None = None,
        caption: str | None = None,
    ) -> Attachment:
        """One ``POST /wp/v2/media`` with the bytes as the body. The source headers let the
        companion plugin store the source hash on the attachment in the same request (so a lost
        answer can be found again); ``alt_text`` and ``caption`` ride along as query parameters.
        Not retried here (a repeated POST is a second attachment): the caller's pending row and
        lookup make the job's retry safe."""
        self.client._require_app_password("upload media")
        params: dict[str, Any] = {"context": "edit", "_fields": ATTACHMENT_FIELDS}
        if alt_text:
            params["alt_text"] = alt_text
        if caption:
            params["caption"] = caption
        headers = {
            "Content-Type": mime,
            "Content-Disposition": f'attachment; filename="{filename}"',
            SHA_HEADER: sha256,
            # Headers are latin-1 without line breaks: percent-encode what is not plain ASCII.
            SOURCE_URL_HEADER: quote(source_url, safe=":/?#[]@!$&'()*+,;=%~"),
        }
        response = self.client.call(
            "POST", MEDIA_ROUTE, params=params, data=body, headers=headers, auth="app", retry=False
        )
        self._raise_for_upload(response, filename)
        attachment = attachment_from_json(response.json_or_none())
        if attachment is None:
            raise PlatformError(
                f"WordPress answered the upload of {filename} with something that is not an attachment.",
                stage="http",
                status_code=response.status_code,
            )
        return attachment

    def _raise_for_upload(self, response: HttpResponse, filename: str) -> None:
        status = response.status_code
        if status < 400:
            return
        code, detail = wp_error_detail(response)
        if status in (401, 403):
            self.client._raise_for(response, f"the upload of {filename}")
        if status == 413 or (status < 500 and status not in TRANSIENT_STATUSES) or code in PERMANENT_UPLOAD_CODES:
            raise MediaRejected(
                self.client.scrub(f"WordPress refused the image (HTTP {status}{detail})."),
                stage="http",
                status_code=status,
            )
        # 429 and any other 5xx (a PHP fatal while making sub-sizes, a proxy): the job retries.
        raise PlatformError(
            self.client.scrub(f"WordPress answered HTTP {status} to the upload of {filename}{detail}."),
            stage="http",
            status_code=status,
            transient=True,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def get(self, attachment_id: int) -> Attachment | None:
        """The attachment, or None when it no longer exists."""
        response = self.client.call(
            "GET",
            f"{MEDIA_ROUTE}/{attachment_id}",
            params={"context": "edit", "_fields": ATTACHMENT_FIELDS},
            auth="app",
        )
        if response.status_code in (404, 410):
            return None
        return attachment_from_json(self.client._json(response, f"attachment {attachment_id}"))

    def update_fields(self, attachment_id: int, fields: dict[str, str]) -> Attachment | None:
        """Set ``alt_text`` / ``caption`` / ``title``; None when the attachment is gone."""
        response = self.client.call(
            "POST",
            f"{MEDIA_ROUTE}/{attachment_id}",
            params={"context": "edit", "_fields": ATTACHMENT_FIELDS},
            json_body=fields,
            auth="app",
        )
        if response.status_code in (404, 410):
            return None
        return attachment_from_json(self.client._json(response, f"updating attachment {attachment_id}"))

    def find_uploaded(self, sha256: str, filename: str, since: datetime) -> Attachment | None:
        """The attachment an earlier, interrupted upload of these bytes made, or None.

        With the companion plugin: ``GET igny8/v1/media?source_sha256=`` (exact: the plugin
        stored the hash from the upload's header in the same request), the oldest match.

        Without it core REST cannot query the attachment's meta, so: the attachments modified
        since ``since`` (the pending row's time, minus 5 minutes of clock slack) whose title
        matches the 12 hex digits of the hash in the file name (WordPress titles an upload after
        its file name), kept only when the stored file name is exactly ``filename`` (or
        WordPress's ``-1`` / ``-scaled`` variants of it), the oldest. Remaining risk without the
        plugin: an attachment retitled (or its upload renamed by a plugin) between the
        interrupted upload and this lookup is not found, so one duplicate attachment is
        possible; a search that plugins rewrite can miss likewise. A wrong adoption needs
        another file of the same name, and so 48 bits of the same hash, in the window.
        """
        if self.has_plugin_lookup:
            response = self.client.call("GET", PLUGIN_MEDIA_ROUTE, params={"source_sha256": sha256}, auth="plugin")
            if response.status_code != 404:  # 404: a plugin version without the route
                data = self.client._json(response, "the IGNY8 Bridge media lookup")
                found = [
                    item
                    for item in (attachment_from_json(entry) for entry in (data if isinstance(data, list) else []))
                    if item is not None
                ]
                return min(found, key=lambda item: item.id) if found else None
        params = {
            "search": sha256[:12],
            "modified_after": format_wp_datetime(since - LOOKUP_SLACK),
            "context": "edit",
            "per_page": 100,
            "orderby": "id",
            "order": "asc",
            "_fields": ATTACHMENT_FIELDS,
        }
        data = self.client._json(self.client.call("GET", MEDIA_ROUTE, params=params, auth="app"), "the media search")
        pattern = _stored_name_pattern(filename)
        for entry in data if isinstance(data, list) else []:
            item = attachment_from_json(entry)
            if item is None:
                continue
            stored = os.path.basename(item.file or urlsplit(item.url).path)
            if pattern.fullmatch(stored):
                return item
        return None


def is_default_title(title: str, filename: str) -> bool:
    """Is ``title`` the one WordPress gave an upload of ``filename`` (its stored file name
    without the extension, ``-1`` or ``-scaled`` included)? That is no title of the customer's."""
    stem = filename.rpartition(".")[0] or filename
    return _stored_name_pattern(stem).fullmatch(title.strip()) is not None


def _stored_name_pattern(filename: str) -> re.Pattern[str]:
    """The names WordPress may store ``filename`` under: as is, ``-N`` when the name was taken,
    ``-scaled`` for a big image (WordPress 5.3+), or both."""
    stem, dot, ext = filename.rpartition(".")
    if not dot:
        stem, ext = filename, ""
    suffix = r"\." + re.escape(ext) if ext else ""
    return re.compile(re.escape(stem) + r"(?:-\d+)?(?:-scaled)?" + suffix, re.IGNORECASE)
