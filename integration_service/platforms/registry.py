"""Which client serves which platform."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from flask import current_app

from ..errors import PlatformNotSupported
from .base import PlatformClient
from .http_types import HttpSettings
from .wordpress import WordPressClient


def _wordpress(integration: Any, settings: HttpSettings) -> PlatformClient:
    config = integration.config_json or {}
    site_url = config.get("site_url") or integration.site.url
    return WordPressClient(site_url, dict(integration.credentials_json or {}), settings)


CLIENTS: dict[str, Callable[[Any, HttpSettings], PlatformClient]] = {"wordpress": _wordpress}


def is_supported(platform: str) -> bool:
    return platform in CLIENTS


def client_for(integration: Any, settings: HttpSettings | None = None) -> PlatformClient:
    """A new client for the integration (one pooled session: use it in a ``with`` block).

    Raises ``PlatformNotSupported`` (501 ``platform_not_supported``) for shopify and custom.
    """
    factory = CLIENTS.get(integration.platform)
    if factory is None:
        raise PlatformNotSupported(
            f"The {integration.platform} platform is not supported yet for this action.",
            details={"platform": integration.platform},
        )
    settings = settings or HttpSettings.from_config(current_app.config)
    # The site id labels the client's rate-limit metric (an internal id, never the site's host).
    return factory(integration, dataclasses.replace(settings, site_id=getattr(integration, "site_id", None)))
