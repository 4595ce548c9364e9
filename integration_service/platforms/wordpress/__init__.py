"""WordPress: ``client`` (REST root discovery, posts, terms, paging), ``diagnostics`` (the
connection checklist) and ``mapping`` (WordPress JSON <-> the platform's types)."""

from .client import WordPressClient

__all__ = ["WordPressClient"]
