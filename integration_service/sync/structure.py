"""SyncMetadataService: the site structure (post types and taxonomies) kept in
``config_json.content_types``, fetched from WordPress by a ``metadata`` sync or pushed by the
plugin through ``update_site_structure``."""

from __future__ import annotations

import logging
from typing import Any

from ..extensions import db
from ..models import SiteIntegration, utcnow
from ..platforms.base import PlatformClient
from ..timeutil import iso

logger = logging.getLogger(__name__)


class SyncMetadataService:
    def __init__(self, integration: SiteIntegration) -> None:
        self.integration = integration

    def fetch_and_store(self, client: PlatformClient) -> dict[str, int]:
        """Read post types and taxonomies from the platform and store them; no content is touched."""
        structure = client.fetch_structure() or {}
        post_types = structure.get("post_types") or {}
        taxonomies = structure.get("taxonomies") or {}
        fetched: dict[str, Any] = {"post_types": post_types, "taxonomies": taxonomies}
        # WordPress's own REST API cannot tell which SEO plugin is active; only the companion
        # plugin's push says so: keep what it last reported.
        seo_plugin = self.content_types().get("seo_plugin")
        if seo_plugin:
            fetched["seo_plugin"] = seo_plugin
        self.store(fetched, source="sync")
        return {"post_types": len(post_types), "taxonomies": len(taxonomies)}

    def store(self, structure: dict[str, Any], source: str) -> dict[str, Any]:
        """Replace ``config_json.content_types``, keeping the rest of the config as it is now in
        the database (re-read under a row lock where the database has one, so a concurrent
        integration update is not lost)."""
        integration = db.session.scalar(
            db.select(SiteIntegration).where(SiteIntegration.id == self.integration.id).with_for_update()
        )
        if integration is None:
            return {}
        content_types = {**structure, "source": source, "last_structure_fetch": iso(utcnow())}
        config = dict(integration.config_json or {})
        config["content_types"] = content_types
        integration.config_json = config
        db.session.commit()
        logger.info(
            "integration %s: site structure stored from %s (%d post types, %d taxonomies)",
            integration.id,
            source,
            len(structure.get("post_types") or {}),
            len(structure.get("taxonomies") or {}),
        )
        return content_types

    def content_types(self) -> dict[str, Any]:
        value = (self.integration.config_json or {}).get("content_types")
        return value if isinstance(value, dict) else {}
