"""IntegrationService: create, read, update and delete integrations under tenancy rules."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from ..auth import Principal
from ..errors import Conflict, InvalidInput
from ..extensions import db
from ..models import DEFAULT_SYNC_INTERVAL_MINUTES, PLATFORM_TYPES, SiteIntegration
from ..sync import schedule
from . import access
from .pagination import paginate

logger = logging.getLogger(__name__)

IMMUTABLE_FIELDS = ("site_id", "platform")


class IntegrationService:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def list(
        self,
        page: int,
        page_size: int,
        site_id: int | None = None,
        platform: str | None = None,
        is_active: bool | None = None,
    ) -> dict[str, Any]:
        query = access.integrations_query(self.principal)
        if site_id is not None:
            query = query.where(SiteIntegration.site_id == site_id)
        if platform is not None:
            query = query.where(SiteIntegration.platform == platform)
        if is_active is not None:
            query = query.where(SiteIntegration.is_active == is_active)
        return paginate(query, page, page_size, SiteIntegration.id)

    def get(self, integration_id: int) -> SiteIntegration:
        return access.get_integration(self.principal, integration_id)

    def create(self, data: dict[str, Any]) -> SiteIntegration:
        integration = self.build(data)
        db.session.add(integration)
        self._commit_unique(integration.site_id, data["platform"])
        logger.info(
            "integration %s created for site %s (%s)", integration.id, integration.site_id, integration.platform
        )
        return integration

    def build(self, data: dict[str, Any]) -> SiteIntegration:
        """A validated integration that is not stored (not even added to the session)."""
        site = access.get_site(self.principal, data["site_id"])
        credentials = dict(data.get("credentials_json") or {})
        if data.get("api_key"):
            credentials["api_key"] = data["api_key"]
        self._require_api_key(data["platform"], credentials)
        config = dict(data.get("config_json") or {})
        config.setdefault("site_url", site.url)
        integration = SiteIntegration(
            site_id=site.id,
            platform=data["platform"],
            platform_type=PLATFORM_TYPES[data["platform"]],
            config_json=config,
            credentials_json=credentials,
            is_active=data.get("is_active", True),
            sync_enabled=data.get("sync_enabled", True),
        )
        schedule.apply_interval(integration, data.get("sync_interval_minutes", DEFAULT_SYNC_INTERVAL_MINUTES))
        return integration

    def update(self, integration_id: int, data: dict[str, Any], partial: bool) -> SiteIntegration:
        integration = self.get(integration_id)
        for name in IMMUTABLE_FIELDS:
            if name in data and data[name] != getattr(integration, name):
                raise InvalidInput(details={name: ["This field cannot be changed; create a new integration."]})
        # The schema can only check platform_type against a platform in the same body.
        if "platform_type" in data and data["platform_type"] != integration.platform_type:
            message = f"The platform {integration.platform} has the type {integration.platform_type}."
            raise InvalidInput(details={"platform_type": [message]})
        if "config_json" in data:
            config = dict(data["config_json"])
            # Platform clients need site_url; a replaced config falls back to the site's URL as on create.
            config.setdefault("site_url", integration.site.url)
            integration.config_json = config
        if "credentials_json" in data or data.get("api_key"):
            # PUT replaces the credentials it is given, PATCH merges them; omitted means unchanged.
            credentials = dict(integration.credentials_json or {}) if partial or "credentials_json" not in data else {}
            credentials.update(data.get("credentials_json") or {})
            if data.get("api_key"):
                credentials["api_key"] = data["api_key"]
            self._require_api_key(integration.platform, credentials)
            integration.credentials_json = credentials
        for name in ("is_active", "sync_enabled"):
            if name in data:
                setattr(integration, name, data[name])
        if "sync_interval_minutes" in data and data["sync_interval_minutes"] != integration.sync_interval_minutes:
            schedule.apply_interval(integration, data["sync_interval_minutes"])
        db.session.commit()
        return integration

    def delete(self, integration_id: int) -> None:
        integration = self.get(integration_id)
        db.session.delete(integration)
        db.session.commit()

    @staticmethod
    def _require_api_key(platform: str, credentials: dict[str, Any]) -> None:
        if platform == "wordpress" and not credentials.get("api_key"):
            raise InvalidInput(
                "A WordPress integration needs an API key.",
                details={"api_key": ["Give the plugin API key in credentials_json.api_key or api_key."]},
            )

    def _commit_unique(self, site_id: int, platform: str) -> None:
        try:
            db.session.commit()
        except IntegrityError as exc:
            db.session.rollback()
            raise Conflict(
                f"Site {site_id} already has a {platform} integration.",
                details={"site_id": site_id, "platform": platform},
            ) from exc
