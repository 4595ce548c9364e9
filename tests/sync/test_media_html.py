"""The img-only HTML rewrite (sync/media_html.py): found exactly, everything else byte for byte."""

from __future__ import annotations

import pytest

from integration_service.sync.media_html import (
    ImgTag,
    external_image_url,
    find_images,
    render_img,
    replace_tags,
)


def test_finds_img_tags_with_their_exact_offsets_but_not_in_comments_or_scripts():
    html = (
        "<p>é\r\n<IMG\nSRC=a.png></p><!-- <img src=c.png> --><script>'<img src=d.png>'</script>"
        "<style>/* <img src=e.png> */</style><img src='b.png' alt=\"x &amp; y\"/>"
    )
    tags = find_images(html)
    assert [html[t.start : t.end] for t in tags] == ["<IMG\nSRC=a.png>", "<img src='b.png' alt=\"x &amp; y\"/>"]
    assert [t.src for t in tags] == ["a.png", "b.png"]
    assert tags[1].alt == "x & y" and tags[1].self_closing and not tags[0].self_closing


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("https://cdn.example.com/a.png", True),
        ("HTTP://cdn.example.com/a.png", True),
        ("https://blog.example.com/wp-content/uploads/a.png", False),
        ("https://BLOG.example.com/a.png", False),
        ("http://blog.example.com/a.png", False),
        ("https://blog.example.com:443/a.png", False),
        ("https://blog.example.com:8443/a.png", True),
        ("http://127.0.0.1:8080/a.png", True),
        ("//cdn.example.com/a.png", False),
        ("/a.png", False),
        ("data:image/png;base64,AA==", False),
        ("javascript:alert(1)", False),
        ("https://[::1", False),
        ("", False),
    ],
)
def test_only_absolute_http_urls_on_another_host_are_external(src, expected):
    assert (external_image_url(src, "https://blog.example.com/") is not None) is expected


def test_a_site_on_a_port_owns_only_that_port():
    assert external_image_url("http://127.0.0.1:8896/wp-content/a.png", "http://127.0.0.1:8896") is None
    assert external_image_url("http://127.0.0.1:9000/a.png", "http://127.0.0.1:8896") is not None


def test_render_img_keeps_alt_and_other_attributes_and_drops_the_source_srcset():
    tag = ImgTag(0, 0, [("src", "x"), ("alt", 'a "b"'), ("srcset", "x 2x"), ("sizes", "1px"), ("loading", None)], False)
    assert render_img(tag, "https://wp/u.png", 5, 30, 20) == (
        '<img src="https://wp/u.png" alt="a &quot;b&quot;" loading class="wp-image-5" width="30" height="20">'
    )


def test_replace_tags_changes_only_the_given_spans():
    html = "a<img src=1>b<img src=2>c"
    first, second = find_images(html)
    assert replace_tags(html, [(second, "<Y>"), (first, "<X>")]) == "a<X>b<Y>c"
    assert replace_tags(html, []) is html
    with pytest.raises(ValueError):
        replace_tags(html, [(first, "<X>"), (first, "<X>")])
