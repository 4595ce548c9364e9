"""Tenancy: every query a caller makes is scoped to its account (and to its site for a site key).
Objects of other tenants are reported as not found, so their ids cannot be probed."""

from __future__ import annotations

from sqlalchemy import Row, Select, bindparam

from ..auth import Principal
from ..errors import NotFound
from ..extensions import db, execute_core
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


def _integration_status_query(site_scoped: bool) -> Select:
    """The tenancy of ``integrations_query`` on the table's columns, with bound parameters."""
    integrations, sites = SiteIntegration.__table__, Site.__table__
    query = (
        db.select(integrations.c.id, integrations.c.sync_status, integrations.c.last_sync_at, integrations.c.sync_error)
        .join(sites, integrations.c.site_id == sites.c.id)
        .where(sites.c.account_id == bindparam("account_id"), integrations.c.id == bindparam("integration_id"))
    )
    return query.where(integrations.c.site_id == bindparam("site_id")) if site_scoped else query


# Built once (a poll runs one of them every few seconds per dashboard): see sync/status_query.py.
_INTEGRATION_STATUS = {False: _integration_status_query(False), True: _integration_status_query(True)}


def get_integration_status(principal: Principal, integration_id: int) -> Row:
    """(id, sync_status, last_sync_at, sync_error) of the caller's integration, as a plain row:
    what a status poll reads, without loading (and decrypting) the credentials."""
    params: dict[str, int | None] = {"account_id": principal.account_id, "integration_id": integration_id}
    if principal.is_site:
        params["site_id"] = principal.site_id
    row = execute_core(_INTEGRATION_STATUS[principal.is_site], params).first()
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
