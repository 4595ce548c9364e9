"""Find the ``<img>`` tags of a post's HTML and rewrite only those tags.

The stdlib ``html.parser`` (a maintained HTML tokenizer, the one the standard library ships)
reports each start tag with its exact source text and position; the rewrite replaces exactly
those characters and copies every other character of the document unchanged. Tags inside
comments, ``<script>`` or ``<style>`` are not tags to the parser and are left alone.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import SplitResult, urlsplit

# The source's responsive variants name the platform's copies: WordPress serves its own srcset
# for a tag with the wp-image-{id} class, so the old ones are dropped from a rewritten tag.
DROPPED_ATTRIBUTES = frozenset({"srcset", "sizes"})


@dataclass
class ImgTag:
    start: int  # offset of "<" in the document
    end: int  # offset just past ">"
    attrs: list[tuple[str, str | None]]
    self_closing: bool

    def get(self, name: str) -> str | None:
        for key, value in self.attrs:
            if key == name:
                return value
        return None

    @property
    def src(self) -> str:
        return (self.get("src") or "").strip()

    @property
    def alt(self) -> str:
        return (self.get("alt") or "").strip()


class _ImgFinder(HTMLParser):
    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        self.document = document
        # The parser reports (line, column) with lines split at "\n" only.
        self.line_starts = [0] + [i + 1 for i, char in enumerate(document) if char == "\n"]
        self.tags: list[ImgTag] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._found(tag, attrs, self_closing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._found(tag, attrs, self_closing=True)

    def _found(self, tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> None:
        if tag != "img":
            return
        text = self.get_starttag_text() or ""
        line, column = self.getpos()
        start = self.line_starts[line - 1] + column
        if self.document[start : start + len(text)] != text:  # never rewrite what was not found exactly
            return
        self.tags.append(ImgTag(start, start + len(text), attrs, self_closing or text.endswith("/>")))


def find_images(document: str) -> list[ImgTag]:
    """Every ``<img>`` start tag, in document order."""
    finder = _ImgFinder(document)
    finder.feed(document)
    finder.close()
    return finder.tags


def external_image_url(src: str, site_url: str) -> str | None:
    """``src`` when it is an absolute http(s) URL that is not on the site, else None (relative,
    protocol-relative, ``data:`` and the site's own images stay as they are). On the site means
    the same host on the same port, http and https on their default ports counting as one."""
    try:
        parts, site = urlsplit(src), urlsplit(site_url)
        host, port, site_port = parts.hostname, _port(parts), _port(site)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    if (
        site.hostname
        and host.lower() == site.hostname.lower()
        and (port == site_port or {port, site_port} <= {80, 443})
    ):
        return None
    return src


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def render_img(tag: ImgTag, url: str, attachment_id: int, width: int | None, height: int | None) -> str:
    """The tag pointing at the attachment: ``src``, the ``wp-image-{id}`` class (WordPress adds
    ``srcset`` and ``sizes`` for it when rendering), width/height when the tag has none; every
    other attribute (``alt`` first of all) kept in its place."""
    attrs: list[tuple[str, str | None]] = []
    has_class = has_size = False
    for name, value in tag.attrs:
        if name in DROPPED_ATTRIBUTES:
            continue
        if name == "src":
            value = url
        elif name == "class":
            has_class = True
            tokens = [t for t in (value or "").split() if not (t.startswith("wp-image-") and t[9:].isdigit())]
            value = " ".join([*tokens, f"wp-image-{attachment_id}"])
        elif name in ("width", "height"):
            has_size = True
        attrs.append((name, value))
    if not has_class:
        attrs.append(("class", f"wp-image-{attachment_id}"))
    if not has_size and width and height:
        attrs += [("width", str(width)), ("height", str(height))]
    parts = ["<img"]
    for name, value in attrs:
        parts.append(f" {name}" if value is None else f' {name}="{html.escape(value, quote=True)}"')
    parts.append(" />" if tag.self_closing else ">")
    return "".join(parts)


def replace_tags(document: str, replacements: list[tuple[ImgTag, str]]) -> str:
    """``document`` with each tag's exact characters replaced; everything else unchanged."""
    if not replacements:
        return document
    out: list[str] = []
    position = 0
    for tag, text in sorted(replacements, key=lambda item: item[0].start):
        if tag.start < position:
            raise ValueError("overlapping tags")
        out.append(document[position : tag.start])
        out.append(text)
        position = tag.end
    out.append(document[position:])
    return "".join(out)
