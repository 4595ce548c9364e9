"""Creating sites and their API keys (the CLI, the tests' factories and the benchmarks use this)."""

from __future__ import annotations

from ..crypto import api_key_digest, generate_api_key
from ..extensions import db
from ..models import Site


def assign_new_api_key(site: Site) -> str:
    """Give the site a new API key (stored encrypted, and as a digest for lookups); returns it
    in plain text, the only time it is seen."""
    api_key = generate_api_key()
    site.wp_api_key = api_key
    site.wp_api_key_digest = api_key_digest(api_key)
    return api_key


def create_site(account_id: int, name: str, url: str) -> tuple[Site, str]:
    """A new site with its API key, added to the session (the caller commits)."""
    site = Site(account_id=account_id, name=name, url=url)
    api_key = assign_new_api_key(site)
    db.session.add(site)
    return site, api_key
