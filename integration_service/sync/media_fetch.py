"""Fetch one image for the media library: through the SSRF-checked transport, streamed into a
temporary file (never whole in memory) under a size cap and a total time limit, hashed on the
way, and typed from its bytes with Pillow (the header only: format, width, height).

Outcomes: a ``FetchedImage``; ``ImageRefused`` for a permanent reason (404, too large, not an
allowed type, SVG, refused address), which fails that image; a transient ``PlatformError``
(network, 5xx, 429, too slow), which the job retries.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image, UnidentifiedImageError

from ..platforms.base import PlatformError
from ..platforms.http import TRANSIENT_STATUSES, HttpTransport, ResponseTooLarge

logger = logging.getLogger(__name__)

# Pillow format -> (MIME type, file extension): what WordPress's media library takes as images.
ALLOWED_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
    "AVIF": ("image/avif", "avif"),
}
ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif;q=0.9,*/*;q=0.1"
SNIFF_BYTES = 1024


class ImageRefused(Exception):
    """This image cannot be used, for good (the reason is user-facing)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class FetchedImage:
    file: IO[bytes]  # positioned at 0; closed (and deleted) by close()
    sha256: str
    size: int
    mime: str
    ext: str
    width: int
    height: int

    def close(self) -> None:
        self.file.close()


class _FileSink:
    """The transport's body sink: a temp file, the running hash, the size cap, the time limit."""

    def __init__(self, max_bytes: int, timeout: float, url_label: str) -> None:
        # Closed by FetchedImage.close() or on failure in fetch_image, not at the end of a block.
        self.file: IO[bytes] = tempfile.TemporaryFile(prefix="igny8-media-")  # noqa: SIM115
        self.max_bytes = max_bytes
        self.expires = time.monotonic() + timeout
        self.timeout = timeout
        self.label = url_label
        self.hash = hashlib.sha256()
        self.size = 0

    def reset(self) -> None:  # a retried attempt starts over
        self.file.seek(0)
        self.file.truncate()
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise ResponseTooLarge(f"larger than the limit of {self.max_bytes} bytes", stage="http")
        if time.monotonic() > self.expires:
            raise PlatformError(
                f"the image host did not send {self.label} within {self.timeout:g} s", stage="timeout", transient=True
            )
        self.hash.update(chunk)
        self.file.write(chunk)


def fetch_image(transport: HttpTransport, url: str, *, max_bytes: int, timeout: float) -> FetchedImage:
    """Download and check one image (see the module docstring for the outcomes)."""
    sink = _FileSink(max_bytes, timeout, "the image")
    try:
        try:
            response = transport.request("GET", url, headers={"Accept": ACCEPT}, sink=sink)
        except ResponseTooLarge:
            raise ImageRefused(f"the image is larger than the limit of {max_bytes} bytes") from None
        except PlatformError as exc:
            if exc.transient:
                raise
            raise ImageRefused(f"the image could not be fetched: {exc.message}") from None
        status = response.status_code
        if status in TRANSIENT_STATUSES or status >= 500:
            raise PlatformError(
                f"the image host answered HTTP {status}", stage="http", status_code=status, transient=True
            )
        if status != 200:
            raise ImageRefused(f"the image host answered HTTP {status}")
        if sink.size == 0:
            raise ImageRefused("the image host sent an empty body")
        sink.file.seek(0)
        mime, ext, width, height = sniff(sink.file)
        sink.file.seek(0)
        return FetchedImage(sink.file, sink.hash.hexdigest(), sink.size, mime, ext, width, height)
    except BaseException:
        sink.file.close()
        raise


def sniff(file: IO[bytes]) -> tuple[str, str, int, int]:
    """(MIME type, extension, width, height) decided from the bytes; ImageRefused otherwise."""
    head = file.read(SNIFF_BYTES)
    file.seek(0)
    if _looks_like_svg(head):
        raise ImageRefused("SVG images are not accepted (they can carry scripts)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a DecompressionBombWarning is handled by the size check below
            with Image.open(file, formats=list(ALLOWED_FORMATS)) as image:
                image_format, (width, height) = image.format or "", image.size
    except Image.DecompressionBombError:
        raise ImageRefused("the image has too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageRefused("the file is not a JPEG, PNG, GIF, WebP or AVIF image") from None
    if image_format not in ALLOWED_FORMATS or width <= 0 or height <= 0:
        raise ImageRefused("the file is not a JPEG, PNG, GIF, WebP or AVIF image")
    mime, ext = ALLOWED_FORMATS[image_format]
    return mime, ext, width, height


def _looks_like_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<") and b"<svg" in text
