"""Connection tests: the stored connection of an integration, and the unauthenticated onboarding
call a WordPress plugin makes with the site's API key.

Every test records a ``SyncEvent`` (``test_connection``) and updates the integration's health
fields. Reports are scrubbed of the integration's secrets before they are stored or returned.

A test runs under one deadline (``CONNECTION_TEST_DEADLINE_SECONDS``) shared by all its requests,
retries and waits, so it ends with a JSON answer (stage ``timeout``) well before the web server
kills the worker. Onboarding tests a not-yet-stored integration and inserts it only after a
successful test: a failed test, or a worker killed mid-test, leaves no integration behind.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime

from flask import current_app

from ..auth import Principal
from ..errors import Conflict, ConnectionFailed, NotFound, PermissionDenied
from ..extensions import db
from ..models import JobStatus, Role, Site, SiteIntegration, SyncEvent, SyncStatus, utcnow
from ..platforms import registry
from ..platforms.base import ConnectionReport
from ..platforms.deadline import Deadline
from ..platforms.http import HttpSettings
from ..platforms.redact import basic_token, scrub, secret_variants
from ..sync import jobs, schedule
from . import access
from .integrations import IntegrationService

logger = logging.getLogger(__name__)

EVENT_TYPE = "test_connection"


def _secrets_of(integration: SiteIntegration) -> list[str]:
    credentials = dict(integration.credentials_json or {})
    values = [str(value) for value in credentials.values() if isinstance(value, str)]
    username, password = credentials.get("username"), credentials.get("app_password")
    if isinstance(username, str) and isinstance(password, str) and username and password:
        values += [basic_token(username, password), basic_token(username, password.replace(" ", ""))]
    # The username is not a secret; keep it readable in reports.
    return [value for value in secret_variants(values) if value != username]


def diagnostic_settings() -> HttpSettings:
    """The configured HTTP settings, with at most one retry and short waits, under a fresh
    deadline for the whole test: a connection test answers a person (or the plugin's onboarding
    request) and must end inside the web server's timeout."""
    settings = HttpSettings.from_config(current_app.config)
    politeness = replace(settings.politeness, wait_seconds=min(settings.politeness.wait_seconds, 5))
    return replace(
        settings,
        max_retries=min(settings.max_retries, 1),
        max_retry_wait=min(settings.max_retry_wait, 5),
        politeness=politeness,
        deadline=Deadline(float(current_app.config["CONNECTION_TEST_DEADLINE_SECONDS"])),
    )


@dataclass
class ConnectionOutcome:
    """A finished test that is not recorded yet."""

    report: ConnectionReport
    started_at: datetime
    duration_ms: int


class ConnectionTestService:
    """Runs a connection test for one integration and records its outcome."""

    def run(self, integration: SiteIntegration) -> ConnectionReport:
        """Test a stored integration and record the outcome."""
        return self.record(integration, self.test(integration))

    def test(self, integration: SiteIntegration) -> ConnectionOutcome:
        """Test the connection (the integration need not be stored); nothing is written."""
        settings = diagnostic_settings()
        client = registry.client_for(integration, settings)  # 501 for shopify/custom
        # End the transaction first: the test may take seconds of outbound HTTP, and an open
        # transaction would hold a pooled database connection (and row locks) meanwhile.
        db.session.commit()
        started_at = utcnow()
        started = time.monotonic()
        with client:
            report = client.test_connection()
        duration_ms = int((time.monotonic() - started) * 1000)
        secrets = _secrets_of(integration)
        details = scrub(dict(report.details), secrets)
        details["duration_ms"] = duration_ms
        if details.get("stage") == "timeout" and settings.deadline is not None:
            details["deadline_seconds"] = settings.deadline.seconds
        message = scrub(report.message, secrets)
        return ConnectionOutcome(ConnectionReport(report.success, message, details), started_at, duration_ms)

    def record(self, integration: SiteIntegration, outcome: ConnectionOutcome) -> ConnectionReport:
        """Store a test's SyncEvent and the integration's health fields."""
        report, started_at, duration_ms = outcome.report, outcome.started_at, outcome.duration_ms
        details, message = report.details, report.message
        stage = details.get("stage")
        db.session.add(
            SyncEvent(
                integration_id=integration.id,
                site_id=integration.site_id,
                event_type=EVENT_TYPE,
                action=EVENT_TYPE,
                status="success" if report.success else "failed",
                details=details,
                error_message=None if report.success else message,
                started_at=started_at,
                finished_at=utcnow(),
            )
        )
        # A test never changes is_active (only the owner's PATCH does): a stopped site or a
        # rejected password must not leave the integration refusing syncs after it is fixed.
        integration.last_connection_test_at = utcnow()
        integration.last_connection_test_ok = report.success
        _record_outcome(integration, None if report.success else message)
        if report.success:
            schedule.resume_after_connection_test(integration)
        db.session.commit()
        logger.info(
            "connection test of integration %s (site %s): %s%s in %d ms",
            integration.id,
            integration.site_id,
            "ok" if report.success else "failed",
            f" at stage {stage}" if stage else "",
            duration_ms,
        )
        return report


def _record_outcome(integration: SiteIntegration, failure: str | None) -> None:
    """Keep sync_status and sync_error in step (sync_error is set exactly when sync_status is
    ``failed``): a failed test reports ``failed`` with its message, a passing one restores what
    the last finished sync said. A queued or running sync is left alone; its outcome decides."""
    if integration.sync_status in (SyncStatus.pending, SyncStatus.syncing):
        return
    if failure is not None:
        integration.sync_status, integration.sync_error = SyncStatus.failed, failure
        return
    last_sync = jobs.last_finished_sync(integration.id)
    if last_sync is None:
        integration.sync_status, integration.sync_error = SyncStatus.idle, None
    elif last_sync.status == JobStatus.failed:
        integration.sync_status, integration.sync_error = SyncStatus.failed, last_sync.error_message
    else:
        integration.sync_status, integration.sync_error = SyncStatus.success, None


def check_stored_connection(principal: Principal, integration_id: int) -> ConnectionReport:
    """``POST /integrations/{id}/test_connection/``: test the stored connection and raise
    ``ConnectionFailed`` (400 ``connection_failed``) when the test fails."""
    report = ConnectionTestService().run(access.get_integration(principal, integration_id))
    if not report.success:
        raise ConnectionFailed(report.message, details=report.details)
    return report


@dataclass
class OnboardingResult:
    success: bool
    integration_id: int
    message: str


def onboard_site(principal: Principal | None, site_id: int, api_key: str, site_url: str) -> OnboardingResult:
    """``POST /integrations/test-connection/``: the contract's onboarding rules.

    Allowed for an editor-or-above user of the site's account, or when ``api_key`` equals the
    site's key (constant-time). Creates the WordPress integration when missing, tests it, and
    deletes it again when it was created here and the test failed.
    """
    site = db.session.get(Site, site_id)
    if site is None:
        raise NotFound("Site not found.")
    key_matches = hmac.compare_digest(site.wp_api_key.encode(), api_key.encode())
    user_allowed = (
        principal is not None
        and principal.user_id is not None
        and principal.account_id == site.account_id
        and principal.can(Role.editor)
    )
    if not (key_matches or user_allowed):
        logger.warning("onboarding test for site %s refused: neither the key nor the caller is allowed", site.id)
        raise PermissionDenied("The API key does not match this site.")
    if site.account.is_suspended:
        raise PermissionDenied("The site's account is suspended.")

    service = ConnectionTestService()
    existing = _wordpress_integration(site.id)
    if existing is not None:
        report = service.run(existing)
        if not report.success:
            raise ConnectionFailed(report.message, details={**report.details, "integration_kept": True})
        return OnboardingResult(True, existing.id, report.message)

    # The integration "created here" exists only in memory while it is tested, and is inserted
    # after a successful test: a failure, an exception or a worker killed by the web server's
    # timeout mid-test leave nothing to delete (the contract's "deletes it again").
    site_principal = Principal(account_id=site.account_id, role=Role.editor, site_id=site.id)
    integrations = IntegrationService(site_principal)
    data = {
        "site_id": site.id,
        "platform": "wordpress",
        "credentials_json": {"api_key": api_key},
        "config_json": {"site_url": site_url},
    }
    outcome = service.test(integrations.build(data))
    if not outcome.report.success:
        logger.info("onboarding: the test for site %s failed; no integration was stored", site.id)
        raise ConnectionFailed(outcome.report.message, details={**outcome.report.details, "integration_kept": False})
    stored: SiteIntegration | None
    try:
        stored = integrations.create(data)
    except Conflict:
        # Another onboarding call stored it while we tested: record this test on that one.
        stored = _wordpress_integration(site.id)
        if stored is None:
            raise
    report = service.record(stored, outcome)
    return OnboardingResult(True, stored.id, report.message)


def _wordpress_integration(site_id: int) -> SiteIntegration | None:
    return db.session.scalar(
        db.select(SiteIntegration).where(SiteIntegration.site_id == site_id, SiteIntegration.platform == "wordpress")
    )
