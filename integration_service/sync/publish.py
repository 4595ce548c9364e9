"""``publish_content``: the push of one content on demand (its images, then its post), as a job.

The job holds the integration's sync lock like a sync does: while a sync or another publish of
the integration is queued or running, a publish request answers 409 with that job's id (and a
sync request answers 409 while a publish runs). So a content is never pushed by two jobs at once
(two creates of one post), and a content already being published answers 409, as the contract
says. The job does not change the integration's ``sync_status`` (it reports the last sync); its
outcome is its own SyncEvent.
"""

from __future__ import annotations

import logging
from typing import Any

from ..extensions import db
from ..models import Content, JobStatus, SiteIntegration, SyncEvent
from ..platforms.base import PlatformClient
from . import jobs
from .engine import ContentSyncService, Progress, SyncCounts
from .runner import Job, Outcome

logger = logging.getLogger(__name__)

EVENT_PUBLISH = "publish"
TASK_PUBLISH = "integration.publish_content"
PUBLISH = jobs.JobKind(EVENT_PUBLISH, TASK_PUBLISH, "publish_content", needs_sync_enabled=True, holds_lock=True)


class PublishJob(Job):
    """Push one content (``SyncEvent.content_id``) now: images first, then one post write with
    the final status. Pushed even when unchanged since its last sync (an explicit request); an
    unchanged image is not fetched or uploaded again (the media record)."""

    task_name = TASK_PUBLISH

    def __init__(self, claim: jobs.Claim, event: SyncEvent, integration: SiteIntegration, retries: int) -> None:
        super().__init__(claim, event, integration, retries)
        self.content = db.session.get(Content, event.content_id) if event.content_id else None
        self.counts = SyncCounts()
        self.progress = Progress(lambda done, total: jobs.heartbeat(claim, done, total))
        self.result: str | None = None

    def prepare(self) -> str | None:
        if not self.integration.is_active or not self.integration.sync_enabled:
            return "The integration was deactivated or its sync disabled before the job ran."
        if self.content is None or self.content.site_id != self.integration.site_id:
            return "The content no longer exists."
        return None

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "content_id": self.event.content_id,
            "attempts": self.retries + 1,
            **self.counts.as_details(),
        }
        if self.content is not None:
            details["external_id"] = self.content.external_id
        if self.result is not None:
            details["result"] = self.result
        return details

    def done(self) -> int | None:
        return self.progress.done

    def body(self, client: PlatformClient | None) -> Outcome:
        content = self.content
        assert client is not None and content is not None
        self.progress.add_total(1)
        service = ContentSyncService(self.integration, client, self.counts, self.progress, job_id=self.event.id)
        self.result = service.publish_one(content)
        self.progress.advance(1)
        if self.counts.errors:
            reasons = "; ".join(str(item.get("error")) for item in self.counts.failed_items[:3])
            return Outcome(JobStatus.partial, self.details(), f"content {content.id} was not published: {reasons}", 1)
        return Outcome(JobStatus.success, self.details(), None, 1)
