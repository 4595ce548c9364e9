"""Factories for test data (Redash-style helpers: one object per call, sensible defaults)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from flask import Flask

from integration_service.auth import hash_password, issue_access_token
from integration_service.extensions import db
from integration_service.models import Account, Content, Site, SiteIntegration, SyncEvent, User
from integration_service.services.accounts import create_site

DEFAULT_PASSWORD = "correct horse battery staple"


class Factory:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._sequence = itertools.count(1)

    def _next(self) -> int:
        return next(self._sequence)

    def account(self, name: str | None = None, status: str = "active") -> Account:
        account = Account(name=name or f"Account {self._next()}", status=status)
        db.session.add(account)
        db.session.commit()
        return account

    def user(
        self,
        account: Account | None = None,
        role: str = "editor",
        is_active: bool = True,
        email: str | None = None,
        password: str = DEFAULT_PASSWORD,
    ) -> User:
        account = account or self.account()
        user = User(
            account_id=account.id,
            email=email or f"user{self._next()}@example.com",
            password_hash=hash_password(password),
            role=role,
            is_active=is_active,
        )
        db.session.add(user)
        db.session.commit()
        return user

    def site(self, account: Account | None = None, url: str = "https://blog.example.com") -> Site:
        account = account or self.account()
        site, api_key = create_site(account.id, f"Site {self._next()}", url)
        site.plain_api_key = api_key  # for tests only; never persisted in plain text
        db.session.commit()
        return site

    def integration(self, site: Site | None = None, platform: str = "wordpress", **fields: Any) -> SiteIntegration:
        site = site or self.site()
        credentials = fields.pop("credentials_json", None)
        if credentials is None:
            credentials = {"api_key": getattr(site, "plain_api_key", None) or site.wp_api_key}
        from integration_service.models import PLATFORM_TYPES

        integration = SiteIntegration(
            site_id=site.id,
            platform=platform,
            platform_type=PLATFORM_TYPES[platform],
            config_json=fields.pop("config_json", {"site_url": site.url}),
            credentials_json=credentials,
            **fields,
        )
        db.session.add(integration)
        db.session.commit()
        return integration

    def content(self, site: Site, **fields: Any) -> Content:
        defaults: dict[str, Any] = {"title": f"Post {self._next()}", "content_html": "<p>Body</p>", "status": "draft"}
        defaults.update(fields)
        content = Content(site_id=site.id, **defaults)
        db.session.add(content)
        db.session.commit()
        return content

    def queued_sync(self, integration: SiteIntegration, direction: str = "both", full: bool = False) -> SyncEvent:
        """A sync job as the API records it before enqueuing (holding the integration's lock)."""
        event = SyncEvent(
            integration_id=integration.id,
            site_id=integration.site_id,
            event_type="sync",
            direction=direction,
            status="queued",
            details={"full": full},
            task_id=str(uuid.uuid4()),
            sync_lock=integration.id,
        )
        db.session.add(event)
        db.session.commit()
        return event

    def token(self, user: User) -> str:
        return issue_access_token(user)[0]
