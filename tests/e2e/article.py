"""The article the publishing end-to-end tests push: a featured image and three inline images, two
of them the same bytes under different URLs (so 3 distinct images, 2 attachments inline)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bench.images import ImageServer


@contextmanager
def article_images(shared_jpeg: bytes, cover_png: bytes, red_png: bytes) -> Iterator[ImageServer]:
    """``/cover.png``, ``/a.jpg`` and ``/copy/b.jpg`` (the same bytes), ``/c.png``, served on loopback."""
    files = {"/cover.png": cover_png, "/a.jpg": shared_jpeg, "/copy/b.jpg": shared_jpeg, "/c.png": red_png}
    with ImageServer(files) as server:
        yield server


def inline_images_html(images: ImageServer) -> str:
    """The article's body: the three inline images, in a block figure and in a paragraph."""
    return (
        f'<p>Intro</p><figure class="wp-block-image"><img src="{images.url("/a.jpg")}" alt="First"/></figure>'
        f'<p><img src="{images.url("/copy/b.jpg")}" alt="Same bytes"> and '
        f'<img src="{images.url("/c.png")}" alt="Red"></p>'
    )
