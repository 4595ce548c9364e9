"""WordPress: ``client`` (``WordPressClient``, composed of ``rest``: credentials, ``call``, error
mapping; ``discovery``: the REST root; ``structure``: post types and taxonomies; ``terms``;
``posts``: pages, posts by id, writes, the pushed-post lookup; ``paging``: whole scans),
``diagnostics`` (the connection checklist), ``mapping`` (WordPress JSON <-> the platform's types)
and, planned, ``media`` (uploads: a standalone class that takes the client)."""

from .client import WordPressClient

__all__ = ["WordPressClient"]
