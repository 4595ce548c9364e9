"""``WordPressClient``: the REST API (``/wp/v2``, Application Passwords) and the IGNY8 Bridge
plugin's namespace (``/igny8/v1``, the site API key), composed from one module per concern:

- ``rest``: credentials, auth headers, the REST root, ``call`` and error mapping (the base);
- ``discovery``: finding the REST root (``/wp-json/``, or ``?rest_route=/`` on sites without
  pretty permalinks), through which every REST URL is built;
- ``structure``: post types and taxonomies; ``terms``: term ids by name;
- ``posts``: one page, posts by id, writes, the pushed-post lookup; ``paging``: whole scans;
- ``diagnostics``: the connection checklist behind ``test_connection`` (it uses the client
  through a Protocol and never imports this module);
- ``media``: uploads and attachment lookups, a standalone class that takes the client, not a
  mixin here.
"""

from __future__ import annotations

from ..base import ConnectionReport
from .diagnostics import ConnectionDiagnostics
from .paging import PagingMixin


class WordPressClient(PagingMixin):
    """Implements ``PlatformClient`` for WordPress (paging builds on posts, posts on terms and
    structure, all on the ``rest`` plumbing)."""

    platform = "wordpress"

    def test_connection(self) -> ConnectionReport:
        """Diagnose the connection step by step (see ``diagnostics``); never raises for a failing site."""
        return ConnectionDiagnostics(self).run()
