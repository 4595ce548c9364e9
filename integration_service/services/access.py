"""Tenancy: every query a caller makes is scoped to its account (and to its site for a site key).
Objects of other tenants are reported as not found, so their ids cannot be probed."""

from __future__ import annotations

from sqlalchemy import Row, Select

from ..auth import Principal
from ..errors import NotFound
from ..extensions import db
from ..models import Content, Site, SiteIntegration


def sites_query(principal: Principal) -> Select:
    query = db.select(Site).where(Site.account_id == principal.account_id)
    if principal.is_site:
        query = query.where(Site.id == principal.site_id)
    return query


def get_site(principal: Principal, site_id: int) -> Site:
    site = db.session.scalar(sites_query(principal).where(Site.id == site_id))
    if site is None:
        raise NotFound("Site not found.")
    return site


def integrations_query(principal: Principal) -> Select:
    query = (
        db.select(SiteIntegration)
        .join(Site, SiteIntegration.site_id == Site.id)
        .where(Site.account_id == principal.account_id)
    )
    if principal.is_site:
        query = query.where(SiteIntegration.site_id == principal.site_id)
    return query


def get_integration(principal: Principal, integration_id: int) -> SiteIntegration:
    integration = db.session.scalar(integrations_query(principal).where(SiteIntegration.id == integration_id))
    if integration is None:
        raise NotFound("Integration not found.")
    return integration


def get_integration_status(principal: Principal, integration_id: int) -> Row:
    """(id, sync_status, last_sync_at, sync_error) of the caller's integration, as a plain row:
    what a status poll reads, without loading (and decrypting) the credentials."""
    row = db.session.execute(
        integrations_query(principal)
        .with_only_columns(
            SiteIntegration.id, SiteIntegration.sync_status, SiteIntegration.last_sync_at, SiteIntegration.sync_error
        )
        .where(SiteIntegration.id == integration_id)
    ).first()
    if row is None:
        raise NotFound("Integration not found.")
    return row


def contents_query(principal: Principal) -> Select:
    query = db.select(Content).join(Site, Content.site_id == Site.id).where(Site.account_id == principal.account_id)
    if principal.is_site:
        query = query.where(Content.site_id == principal.site_id)
    return query


def get_content(principal: Principal, content_id: int) -> Content:
    content = db.session.scalar(contents_query(principal).where(Content.id == content_id))
    if content is None:
        raise NotFound("Content not found.")
    return content
