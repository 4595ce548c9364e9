"""A WordPress media library and an image host faked with ``responses``, for sync/media.py tests."""

from __future__ import annotations

import hashlib
import io
import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
import responses
from PIL import Image

from tests.platforms.fakes import SITE

API = f"{SITE}/wp-json/wp/v2"
IMAGES = "https://img.example.test"


def image_bytes(
    color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48), fmt: str = "PNG"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


class FakeMediaLibrary:
    """``POST /wp/v2/media`` (raw body), ``GET|POST /wp/v2/media/{id}``, ``GET /wp/v2/media?search=``
    and, with ``plugin``, the companion plugin's ``GET igny8/v1/media?source_sha256=``."""

    def __init__(self, mock: responses.RequestsMock, plugin: bool = True) -> None:
        self.attachments: dict[int, dict[str, Any]] = {}
        self.uploads: list[dict[str, Any]] = []  # what each upload request carried
        self.updates: list[tuple[int, dict[str, Any]]] = []
        self.lookups: list[str] = []  # "plugin" / "search" per lookup request
        self.next_id = 100
        self.lose_next_answer = False  # store the upload, then drop the connection (a lost answer)
        self.fail_next_upload: tuple[int, dict[str, Any]] | None = None
        mock.add_callback(
            responses.POST, re.compile(re.escape(API) + r"/media.*"), callback=lambda request: self._post(request)
        )
        mock.add_callback(responses.GET, re.compile(re.escape(API) + r"/media.*"), callback=self._get)
        if plugin:
            mock.add_callback(
                responses.GET, re.compile(re.escape(SITE) + r"/wp-json/igny8/v1/media.*"), callback=self._plugin
            )

    @staticmethod
    def _answer(status: int, data: Any) -> tuple[int, dict[str, str], str]:
        return status, {"Content-Type": "application/json"}, json.dumps(data)

    def _json_of(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": item["id"],
            "source_url": item["source_url"],
            "media_details": {"width": item["width"], "height": item["height"], "file": item["file"]},
            "alt_text": item["alt_text"],
            "caption": {"raw": item["caption"]},
            "title": {"raw": item["title"]},
        }

    def _post(self, request: Any) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(request.url)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        match = re.search(r"/media/(\d+)$", parts.path)
        if match:
            item = self.attachments.get(int(match.group(1)))
            if item is None:
                return self._answer(404, {"code": "rest_post_invalid_id"})
            fields = json.loads(request.body)
            self.updates.append((item["id"], fields))
            for key in ("alt_text", "caption", "title"):
                if key in fields:
                    item[key] = fields[key]
            return self._answer(200, self._json_of(item))
        body = request.body.read() if hasattr(request.body, "read") else request.body
        disposition = request.headers.get("Content-Disposition", "")
        filename = disposition.split('filename="', 1)[1].rstrip('"')
        record = {
            "filename": filename,
            "content_type": request.headers.get("Content-Type"),
            "sha256_header": request.headers.get("X-IGNY8-Source-SHA256"),
            "source_url_header": request.headers.get("X-IGNY8-Source-URL"),
            "authorization": request.headers.get("Authorization"),
            "sha256": hashlib.sha256(body).hexdigest(),
            "query": query,
        }
        self.uploads.append(record)
        if self.fail_next_upload is not None:
            status, data = self.fail_next_upload
            self.fail_next_upload = None
            return self._answer(status, data)
        with Image.open(io.BytesIO(body)) as image:
            width, height = image.size
        taken = {item["file"] for item in self.attachments.values()}
        stored, n = filename, 1
        while stored in taken:  # WordPress does not deduplicate: same name again is name-1.ext
            stem, ext = filename.rsplit(".", 1)
            stored, n = f"{stem}-{n}.{ext}", n + 1
        item = {
            "id": self.next_id,
            "file": stored,
            "source_url": f"{SITE}/wp-content/uploads/2026/12/{stored}",
            "width": width,
            "height": height,
            "alt_text": query.get("alt_text", ""),
            "caption": query.get("caption", ""),
            "title": stored.rsplit(".", 1)[0],
            "source_sha256": record["sha256_header"],
        }
        self.attachments[item["id"]] = item
        self.next_id += 1
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise requests.ConnectionError("connection reset by peer")
        return self._answer(201, self._json_of(item))

    def _get(self, request: Any) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(request.url)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        match = re.search(r"/media/(\d+)$", parts.path)
        if match:
            item = self.attachments.get(int(match.group(1)))
            return (
                self._answer(200, self._json_of(item)) if item else self._answer(404, {"code": "rest_post_invalid_id"})
            )
        self.lookups.append("search")
        term = query.get("search", "")
        found = [self._json_of(item) for _, item in sorted(self.attachments.items()) if term in item["title"]]
        return self._answer(200, found)

    def _plugin(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.lookups.append("plugin")
        sha = parse_qs(urlsplit(request.url).query).get("source_sha256", [""])[0]
        found = [
            {**self._json_of(item), "sha256": item["source_sha256"]}
            for _, item in sorted(self.attachments.items())
            if item["source_sha256"] == sha
        ]
        return self._answer(200, found)


class ImageHost:
    """Images served at ``IMAGES/<path>``; counts the requests per path."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.hits: dict[str, int] = {}

    def serve(self, path: str, body: bytes, status: int = 200, content_type: str = "image/png") -> str:
        url = f"{IMAGES}/{path}"

        def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
            key = unquote(urlsplit(request.url).path)
            self.hits[key] = self.hits.get(key, 0) + 1
            return status, {"Content-Type": content_type}, body

        self.mock.add_callback(responses.GET, url, callback=callback)
        return url

    def count(self, path: str) -> int:
        return self.hits.get(f"/{path}", 0)
