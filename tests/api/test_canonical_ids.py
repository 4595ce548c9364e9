"""Issue 20 item 4: an id in a path is ASCII digits without leading zeros and without encoded
characters; anything else answers 404 in the envelope, even when it would decode to a real id."""

from __future__ import annotations

import pytest

from tests.api.test_errors import assert_envelope

INTEGRATIONS = "/api/v1/integration/integrations/"
CONTENT = "/api/v1/writer/content/"

NOT_CANONICAL = [
    "01",  # leading zero
    "001",
    "%31",  # "1", percent-encoded
    "%2F1",  # "/1"
    "1%2F",  # "1/"
    "%D9%A1",  # ARABIC-INDIC DIGIT ONE: int() reads it as 1
    "+1",
    "1.0",
    "%201",
    "1%00",
]


@pytest.fixture
def integration(factory, site):
    return factory.integration(site)


@pytest.fixture
def content(factory, site):
    return factory.content(site, title="one")


def test_the_canonical_ids_answer(editor_client, integration, content):
    assert integration.id == 1 and content.id == 1
    assert editor_client.get(f"{INTEGRATIONS}1/").status_code == 200
    assert editor_client.get(f"{INTEGRATIONS}1/sync_status/").status_code == 200
    assert editor_client.get(f"{CONTENT}1/").status_code == 200


@pytest.mark.parametrize("raw", NOT_CANONICAL)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", INTEGRATIONS + "{}/"),
        ("PATCH", INTEGRATIONS + "{}/"),
        ("DELETE", INTEGRATIONS + "{}/"),
        ("GET", INTEGRATIONS + "{}/sync_status/"),
        ("POST", INTEGRATIONS + "{}/sync/"),
        ("GET", CONTENT + "{}/"),
    ],
)
def test_a_non_canonical_id_is_404(editor_client, integration, content, method, path, raw):
    body = {} if method in ("POST", "PATCH") else None
    response = editor_client.open(method, path.format(raw), json=body)
    assert_envelope(response, 404, "not_found")


def test_a_doubled_slash_is_404_not_a_redirect(editor_client, integration):
    # werkzeug would answer an HTML 308 to the merged path; no path of ours has an empty segment.
    assert_envelope(editor_client.get(f"{INTEGRATIONS}/1/"), 404, "not_found")


def test_percent_encoding_elsewhere_is_still_fine(editor_client, integration):
    # Only a path with an id is checked; a query string may be encoded as usual.
    response = editor_client.get(f"{INTEGRATIONS}?platform=%77ordpress")
    assert response.status_code == 200 and response.get_json()["count"] == 1
