"""The worker side of sync jobs: one runner template for every kind of job.

``run(job_class, event_id, task_id, retries, max_retries)`` claims the job (fenced by its claim
token), loads its rows, lets the job check it can still run, opens the platform client
(``with client_for(...)``), runs the job's body, maps errors (a transient platform error is
retried with backoff while retries are left; a lost claim stops without writing; anything else
fails the job with a message) and finishes it. Each job below keeps only its body.

PostgreSQL transactions (issue 22): the claim, the rows and what ``prepare`` stages commit
together before the first platform request; the final state, whatever the body left uncommitted
(a pull's last page and position) and the job's completion (a sync's schedule) commit together
at the end. A scheduled incremental sync that finds nothing costs those two.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from sqlalchemy.exc import DBAPIError

from ..extensions import db
from ..models import Content, JobStatus, SiteIntegration, SyncEvent, SyncStatus, utcnow
from ..platforms.base import PlatformClient, PlatformError, PostNotFound
from ..platforms.registry import client_for
from ..platforms.wordpress import site_cache
from ..timeutil import iso, parse_iso
from . import jobs, schedule
from .engine import ContentSyncService, Progress, SliceDone, SyncCounts, apply_remote
from .reconcile import reconcile
from .structure import SyncMetadataService

logger = logging.getLogger(__name__)


class HandedOff(Exception):
    """The job's slice ended and its next run was enqueued: this run stops without finishing it."""


class RetryLater(Exception):
    """A transient platform error: the task should be retried after ``countdown`` seconds."""

    def __init__(self, countdown: float, message: str) -> None:
        super().__init__(message)
        self.countdown = countdown


@dataclass
class Outcome:
    status: JobStatus
    details: dict[str, Any]
    error: str | None = None
    done: int | None = None  # progress_done to publish with the final state
    failed_stage: str | None = None  # the PlatformError's stage of a failure ("auth" pauses the schedule)
    total: int | None = None  # progress_total to publish with it (kept in memory by a pull that wrote nothing)
    checkpoint: dict[str, Any] | None = None  # the last position, when the body left it uncommitted


class Job:
    """One run of a job. Subclasses set the class options and implement ``body``."""

    uses_client: ClassVar[bool] = True
    task_name: ClassVar[str] = ""  # the Celery task that runs it (a sliced job re-enqueues it)
    updates_integration: ClassVar[bool] = False  # finish() also writes the integration's sync state

    def __init__(self, claim: jobs.Claim, event: SyncEvent, integration: SiteIntegration, retries: int) -> None:
        self.claim = claim
        self.event = event
        self.integration = integration
        self.retries = retries
        self.refusal: str | None = None  # what prepare() answered

    def prepare(self) -> str | None:
        """Before the client opens, in the claim's transaction (what it stages commits with the
        claim): a reason the job cannot run (it fails), or None."""
        return None

    def body(self, client: PlatformClient | None) -> Outcome:
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        """The details written when the job fails or is retried."""
        return dict(self.event.details or {})

    def done(self) -> int | None:
        return None

    def made_progress(self) -> bool:
        """Whether any earlier run or this one stored something (a checkpoint exists). Called
        after the rollback, which expired the event: this reads the committed checkpoint."""
        return bool(self.event.checkpoint)

    def finished(self, outcome: Outcome) -> None:
        """With the final state written (fenced by the claim) but not committed yet: what the job
        writes here commits with it (it may commit itself; the runner commits otherwise). Once
        per job, whatever its outcome. Never called between slices (HandedOff), on a retry
        (RetryLater) or when the claim was lost."""


CLAIM_ATTEMPTS = 5  # ~10 s of waiting: a PostgreSQL restart or failover is over by then


def _start(job_class: type[Job], event_id: int, task_id: str | None, retries: int) -> Job | dict[str, Any]:
    """Claim the job, load its rows and let it prepare, in one transaction, riding out a database
    that is briefly away. A task that failed here would be acked and lost, leaving its job queued
    (holding the sync lock) until the queued-stuck window; a claim whose reply was lost is taken
    over on the next attempt (same task id). Returns the job, or the task's result when it
    ended here."""
    for attempt in range(1, CLAIM_ATTEMPTS + 1):
        try:
            return _claim_and_prepare(job_class, event_id, task_id, retries)
        except DBAPIError as exc:
            db.session.rollback()
            if attempt == CLAIM_ATTEMPTS:
                raise RetryLater(5.0, f"database unavailable while claiming ({type(exc.orig).__name__})") from None
            logger.warning("sync event %s: database unavailable while claiming; retrying", event_id)
            time.sleep(attempt)
    raise AssertionError("unreachable")  # the last attempt returns or raises


def _claim_and_prepare(job_class: type[Job], event_id: int, task_id: str | None, retries: int) -> Job | dict[str, Any]:
    claim = jobs.claim(event_id, task_id, commit=False)
    if claim is None:
        db.session.rollback()
        logger.info("sync event %s: not claimable (finished, gone or owned elsewhere); skipping", event_id)
        return {"status": "skipped"}
    # The claim was written by an UPDATE the session did not see: load the row as it is now.
    event = db.session.get(SyncEvent, event_id, populate_existing=True)
    integration = db.session.get(SiteIntegration, event.integration_id) if event is not None else None
    if event is None or integration is None:
        jobs.finish(claim, JobStatus.failed, None, "The job's integration no longer exists.")
        return {"status": JobStatus.failed}
    job = job_class(claim, event, integration, retries)
    job.refusal = job.prepare()
    # The claim and what prepare staged (a sync's ``syncing`` status) commit together; the rows
    # stay loaded, so opening the client and the body do not read them again.
    _commit_keeping_rows()
    return job


def run(
    job_class: type[Job], event_id: int, task_id: str | None, retries: int = 0, max_retries: int = 0
) -> dict[str, Any]:
    started = _start(job_class, event_id, task_id, retries)
    if not isinstance(started, Job):
        return started
    job, claim, event, integration = started, started.claim, started.event, started.integration
    try:
        if job.refusal is not None:
            outcome = Outcome(JobStatus.failed, job.details(), job.refusal)
        elif job.uses_client:
            with jobs.keep_alive(claim), client_for(integration) as client:
                _end_transaction(event, integration)
                outcome = job.body(client)
        else:
            outcome = job.body(None)
    except HandedOff:
        logger.info("sync event %s: slice done; the next slice is queued", event_id)
        return {"status": "continued"}
    except jobs.LostOwnership:
        db.session.rollback()
        logger.warning("sync event %s: lost ownership (taken over or marked stuck); stopping", event_id)
        return {"status": "abandoned"}
    except PlatformError as exc:
        db.session.rollback()
        failure = _retry_or_fail(claim, exc, job, retries, max_retries)
        if failure is None:
            return {"status": "abandoned"}
        outcome = Outcome(JobStatus.failed, job.details(), failure, job.done(), exc.stage)
    except SoftTimeLimitExceeded:
        db.session.rollback()
        outcome = Outcome(JobStatus.failed, job.details(), "The job exceeded its time limit.", job.done())
    except Exception as exc:
        db.session.rollback()
        logger.exception("sync event %s failed unexpectedly", event_id)
        message = f"Internal error ({type(exc).__name__}); see the worker log."
        outcome = Outcome(JobStatus.failed, job.details(), message, job.done())
    # The final state (with whatever the body left uncommitted, e.g. a pull's last page), then
    # the job's own completion (a sync's schedule) in the same transaction: a job that lost its
    # claim writes none of it.
    finished = jobs.finish(
        claim,
        outcome.status,
        outcome.details,
        outcome.error,
        outcome.done,
        update_integration=job.updates_integration,
        total=outcome.total,
        checkpoint=outcome.checkpoint,
        commit=False,
    )
    if not finished:
        return {"status": "abandoned"}
    job.finished(outcome)
    db.session.commit()  # nothing left when finished() committed
    logger.info("sync event %s finished: %s", event_id, outcome.status)
    return {"status": outcome.status}


def _end_transaction(*rows: Any) -> None:
    """Load the job's rows, then commit without expiring them: the job's body starts with
    WordPress requests, and a worker running hundreds of jobs at once must not hold a database
    connection (idle in transaction) per job while it waits on them. The rows stay as just read;
    the body's first write begins a new transaction."""
    for row in rows:
        _ = row.id  # an expired row loads now, not in the body
    _commit_keeping_rows()  # nothing to commit when prepare kept the rows and nothing read since


def _commit_keeping_rows() -> None:
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def _describe(exc: PlatformError) -> str:
    return f"{exc.stage}: {exc.message}" + (f" (HTTP {exc.status_code})" if exc.status_code else "")


def _retry_or_fail(claim: jobs.Claim, exc: PlatformError, job: Job, retries: int, max_retries: int) -> str | None:
    """Requeue for a retry (raises RetryLater) on a transient error with retries and retry time
    left; else return the failure message (None: the job was no longer ours)."""
    message = _describe(exc)
    if not exc.transient:
        return message
    if exc.connection_refused and not job.made_progress():
        # Refused on every attempt of the job's first request: nothing listens there, and
        # retrying for minutes only delays the answer (issue 10).
        return f"{message} Nothing accepted the connection; check the site URL and that WordPress is up."
    previous = dict(job.event.details or {})
    now = utcnow()
    retrying_since = parse_iso(previous.get("retrying_since")) or now
    cap = float(current_app.config["SYNC_RETRY_MAX_TOTAL_SECONDS"])
    countdown = jobs.backoff_seconds(retries, exc.retry_after)
    if retries >= max_retries:
        return message
    if (now - retrying_since).total_seconds() + countdown > cap:
        return f"{message} (gave up after {retries + 1} attempt(s): retries are capped at {cap:g} s)"
    retry_details = {
        **job.details(),
        "attempts": retries + 1,
        "attempt": retries + 2,  # the attempt that runs next
        "max_attempts": max_retries + 1,
        "next_retry_in_seconds": countdown,
        "next_retry_at": iso(now + timedelta(seconds=countdown)),
        "retrying_since": iso(retrying_since),
    }
    if jobs.requeue_for_retry(claim, f"attempt {retries + 1} failed ({message}); retrying", retry_details):
        logger.warning("sync event %s: transient error (%s); retry in %ss", claim.event_id, message, countdown)
        raise RetryLater(countdown, message)
    return None


# ---------------------------------------------------------------------- the jobs


class SyncJob(Job):
    """A sync in one direction (``SyncEvent.direction``): metadata, from_external, to_external, both
    or reconcile."""

    updates_integration = True
    task_name = jobs.TASK_SYNC

    def __init__(self, claim: jobs.Claim, event: SyncEvent, integration: SiteIntegration, retries: int) -> None:
        super().__init__(claim, event, integration, retries)
        self.direction = event.direction or "both"
        self.full = bool((event.details or {}).get("full"))
        self.counts = SyncCounts()
        self.progress = Progress(lambda done, total: jobs.heartbeat(claim, done, total))
        self.extra: dict[str, Any] = {}
        # A retried, redelivered, resumed or next-slice run goes on from the checkpoint: the same
        # counts and progress, and the pull from the page after the last one stored.
        self.checkpoint: dict[str, Any] = dict(event.checkpoint or {})
        if self.checkpoint.get("phase"):
            self.counts = SyncCounts.from_details(self.checkpoint.get("counts") or {})
            done, total = (self.checkpoint.get("progress") or [0, 0])[:2]
            self.progress.done, self.progress.total = int(done or 0), total
            self.extra["resumed"] = True
        self.service: ContentSyncService | None = None
        self.final_checkpoint: dict[str, Any] | None = None  # left for the finish to write

    def prepare(self) -> str | None:
        if not self.integration.is_active or not self.integration.sync_enabled:
            return "The integration was deactivated or its sync disabled before the job ran."
        self.integration.sync_status = SyncStatus.syncing  # committed with the claim
        return None

    def details(self) -> dict[str, Any]:
        return {
            **schedule.carried_details(self.event.details),  # who started it (manual, scheduled)
            "full": self.full,
            "attempts": self.retries + 1,
            **self.counts.as_details(),
            **self.extra,
        }

    def finished(self, outcome: Outcome) -> None:
        # The schedule moves on (or backs off / pauses) after manual and scheduled syncs alike;
        # it commits the final state with it.
        schedule.after_sync_job(self.event.id, outcome.status, outcome.failed_stage)

    def made_progress(self) -> bool:
        # A pull that found nothing keeps its position in memory only (nothing to commit it with).
        return super().made_progress() or bool(self.service is not None and self.service.checkpoint)

    def done(self) -> int | None:
        return self.progress.done

    def body(self, client: PlatformClient | None) -> Outcome:
        assert client is not None
        if self.direction in ("metadata", "reconcile"):
            # These re-read the site's structure: not from the per-process cache (site_cache).
            getattr(client, "forget_site_shape", lambda: None)()
        if self.direction == "metadata":
            self.extra = SyncMetadataService(self.integration).fetch_and_store(client)
        else:
            service = ContentSyncService(
                self.integration,
                client,
                self.counts,
                self.progress,
                job_id=self.event.id,
                checkpoint=self.checkpoint,
                save_checkpoint=lambda state, done, total: jobs.save_checkpoint(self.claim, state, done, total),
                max_pages=int(current_app.config["SYNC_SLICE_PAGES"]),
            )
            self.service = service
            if self.direction == "reconcile":
                # Not sliced nor checkpointed: a rerun only lists ids again and fetches what differs.
                self.extra.update(reconcile(service))
            if self.direction in ("from_external", "both") and self.checkpoint.get("phase") != "push":
                self._pull(service)
                self.extra["incremental"] = service.incremental_used
                if self.direction == "both":
                    # The pull is done: a resume after this point only pushes.
                    jobs.save_checkpoint(
                        self.claim, {**service.checkpoint, "phase": "push"}, self.progress.done, self.progress.total
                    )
                    db.session.commit()
                else:
                    # The pull left its last writes and position uncommitted: the finish commits them.
                    self.final_checkpoint = service.checkpoint
            elif self.checkpoint.get("phase") == "push":
                self.extra["incremental"] = self.checkpoint.get("incremental_used") or {}
            if self.direction in ("to_external", "both"):
                self.progress.add_total(service.count_push_candidates())
                self.progress.report()
                service.push(count_unchanged=self.direction == "to_external")
        counts = self.counts
        status, error = JobStatus.success, None
        if counts.errors:
            named = ", ".join(_item_name(item) for item in counts.failed_items[:5])
            status, error = JobStatus.partial, f"{counts.errors} item(s) could not be synced: {named}"
        return Outcome(
            status,
            self.details(),
            error,
            self.progress.done,
            total=self.progress.total if self.service is not None else None,
            checkpoint=self.final_checkpoint,
        )

    def _pull(self, service: ContentSyncService) -> None:
        while True:
            try:
                # Nothing follows the pull but the finish (or the push checkpoint, committed at
                # once): its last writes wait for that commit instead of having their own.
                service.pull(full=self.full, detect_conflicts=True, defer_tail=True)
                return
            except SliceDone:
                if jobs.hand_off(self.claim, self.task_name, self.details()):
                    raise HandedOff() from None
                service.pages_stored = 0  # the broker refused the next slice: go on here


def _item_name(item: dict[str, Any]) -> str:
    if item.get("external_id"):
        return f"{item.get('content_type', 'post')} {item['external_id']}"
    if item.get("content_id"):
        return f"content {item['content_id']}"
    if item.get("page"):
        return f"{item.get('content_type')} page {item['page']}"
    return "unknown item"


class ContentPullJob(Job):
    """Pull one content's post (the platform wins: an explicit pull clears a conflict)."""

    def __init__(self, claim: jobs.Claim, event: SyncEvent, integration: SiteIntegration, retries: int) -> None:
        super().__init__(claim, event, integration, retries)
        self.content = db.session.get(Content, event.content_id) if event.content_id else None

    def prepare(self) -> str | None:
        if self.content is None or not self.content.external_id:
            return "The content no longer exists or has no WordPress post."
        return None

    def body(self, client: PlatformClient | None) -> Outcome:
        content = self.content
        assert client is not None and content is not None and content.external_id is not None
        try:
            remote = client.get_post(content.content_type, content.external_id)
        except PostNotFound:
            content.external_status = "missing"
            content.last_synced_at = utcnow()
            db.session.commit()
            return Outcome(JobStatus.success, {**self.details(), "result": "missing", "missing": 1})
        apply_remote(content, remote, utcnow())
        db.session.commit()
        return Outcome(JobStatus.success, {**self.details(), "result": "updated", "updated": 1})


class StructureJob(Job):
    """Store the site structure the plugin pushed (kept in the job's details)."""

    uses_client = False

    def body(self, client: PlatformClient | None) -> Outcome:
        structure = dict((self.event.details or {}).get("structure") or {})
        stored = SyncMetadataService(self.integration).store(structure, source="plugin")
        # The site's post types or taxonomies changed: this worker's next sync asks the site again
        # (other workers within WP_STRUCTURE_CACHE_SECONDS).
        site_cache.forget_site(str((self.integration.config_json or {}).get("site_url") or ""))
        summary = {
            "post_types": len(structure.get("post_types") or {}),
            "taxonomies": len(structure.get("taxonomies") or {}),
            "last_structure_fetch": stored.get("last_structure_fetch"),
        }
        return Outcome(JobStatus.success, summary)
