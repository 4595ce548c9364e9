"""Database models.  Secrets (site API keys, integration credentials) are stored encrypted."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import JSON

from .crypto import EncryptedJSON, EncryptedText
from .extensions import db

if TYPE_CHECKING:
    from sqlalchemy.orm import DeclarativeBase

    class Model(DeclarativeBase):
        """``db.Model`` as the type checker sees it (Flask-SQLAlchemy builds it at runtime)."""

else:
    Model = db.Model


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value is not None and dialect.name == "sqlite":
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


JSONDict = MutableDict.as_mutable(JSON)


class Role(enum.IntEnum):
    viewer = 1
    editor = 2
    admin = 3
    owner = 4


ROLE_NAMES = [role.name for role in Role]
PLATFORM_TYPES = {"wordpress": "cms", "shopify": "ecommerce", "custom": "custom_api"}


class SyncStatus(enum.StrEnum):
    """An integration's ``sync_status``."""

    idle = "idle"
    pending = "pending"
    syncing = "syncing"
    success = "success"
    failed = "failed"


class JobStatus(enum.StrEnum):
    """A job's (``SyncEvent``) ``status``."""

    queued = "queued"
    running = "running"
    success = "success"
    partial = "partial"
    failed = "failed"


SYNC_STATUSES = [status.value for status in SyncStatus]
JOB_STATUSES = [status.value for status in JobStatus]
ACTIVE_JOB_STATUSES = (JobStatus.queued, JobStatus.running)
FINAL_JOB_STATUSES = (JobStatus.success, JobStatus.partial, JobStatus.failed)
ACTIVE_ACCOUNT = "active"  # any other Account.status is suspended
SYNC_DIRECTIONS = ["metadata", "both", "to_external", "from_external", "reconcile"]
CONTENT_STATUSES = ["draft", "review", "published"]
CONTENT_SOURCES = ["platform", "wordpress"]
POST_FORMATS = ["standard", "aside", "chat", "gallery", "link", "image", "quote", "status", "video", "audio"]
COMMENT_STATUSES = ["open", "closed"]
DEFAULT_SYNC_INTERVAL_MINUTES = 15
SYNC_TRIGGERS = ["manual", "scheduled"]
# Literal SQL so the partial indexes render identically in the models and the migration.
SCHEDULABLE_CONDITION = text(
    "is_active AND sync_enabled AND paused_reason IS NULL AND sync_interval_minutes IS NOT NULL"
)
ACTIVE_JOBS_CONDITION = text("status IN ('queued', 'running')")


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


class Account(TimestampMixin, Model):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), default="active", nullable=False)

    users = relationship("User", back_populates="account", cascade="all, delete-orphan")
    sites = relationship("Site", back_populates="account", cascade="all, delete-orphan")

    @property
    def is_suspended(self) -> bool:
        return self.status != ACTIVE_ACCOUNT


class User(TimestampMixin, Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True, nullable=False)
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(20), default="viewer", nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)

    account = relationship("Account", back_populates="users")

    __table_args__ = (CheckConstraint("role in ('viewer','editor','admin','owner')", name="role"),)

    @property
    def role_level(self) -> Role:
        return Role[self.role]


class Site(TimestampMixin, Model):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    # The key is kept encrypted (it is also the webhook signing secret, so it must be
    # recoverable) and found through a SHA-256 digest; comparisons are constant-time.
    wp_api_key: Mapped[str] = mapped_column(EncryptedText, nullable=False)
    wp_api_key_digest: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)

    account = relationship("Account", back_populates="sites")
    integrations = relationship("SiteIntegration", back_populates="site", cascade="all, delete-orphan")


class SiteIntegration(TimestampMixin, Model):
    __tablename__ = "site_integrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True, nullable=False)
    platform: Mapped[str] = mapped_column(String(20), nullable=False)
    platform_type: Mapped[str] = mapped_column(String(20), nullable=False)
    config_json: Mapped[dict] = mapped_column(JSONDict, default=dict, nullable=False)
    credentials_json: Mapped[dict] = mapped_column(EncryptedJSON, default=dict, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    sync_enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    sync_status: Mapped[str] = mapped_column(String(20), default="idle", nullable=False)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_error: Mapped[str | None] = mapped_column(Text)
    last_connection_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_connection_test_ok: Mapped[bool | None] = mapped_column(Boolean)
    # High-water mark of the last successful pull (WordPress modified_gmt), for incremental syncs.
    last_pull_modified_gmt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Per post type high-water marks ({"post": "2026-...Z"}); a type without one is pulled in full.
    pull_watermarks: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    last_webhook_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Schedule (integration_service/sync/schedule.py). NULL interval = manual syncs only. No column
    # default on purpose: the ORM would apply it to an explicit None. IntegrationService.create
    # sets DEFAULT_SYNC_INTERVAL_MINUTES.
    sync_interval_minutes: Mapped[int | None] = mapped_column(Integer)
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set (e.g. "auth_failed") when the schedule stops on its own; a passing connection test clears it.
    paused_reason: Mapped[str | None] = mapped_column(String(40))
    sync_failure_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    last_scheduled_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_reconcile_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site = relationship("Site", back_populates="integrations")
    sync_events = relationship(
        "SyncEvent", back_populates="integration", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("site_id", "platform"),
        # The dispatcher's query (next_sync_at <= now among schedulable integrations): a partial
        # index holds only those, so paused, disabled and manual-only integrations cost nothing.
        Index(
            "ix_site_integrations_due",
            "next_sync_at",
            postgresql_where=SCHEDULABLE_CONDITION,
            sqlite_where=SCHEDULABLE_CONDITION,
        ),
    )


class SyncEvent(Model):
    __tablename__ = "sync_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("site_integrations.id", ondelete="CASCADE"), nullable=False)
    site_id: Mapped[int] = mapped_column(Integer, nullable=False)
    event_type: Mapped[str] = mapped_column(String(40), nullable=False)
    action: Mapped[str | None] = mapped_column(String(60))
    direction: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued", nullable=False)
    details: Mapped[dict] = mapped_column(JSONDict, default=dict, nullable=False)
    error_message: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Set to the integration id while a sync job is queued or running, NULL afterwards: the
    # unique constraint makes "one sync at a time per integration" hold across workers.
    sync_lock: Mapped[int | None] = mapped_column(Integer, unique=True)
    content_id: Mapped[int | None] = mapped_column(Integer)
    webhook_id: Mapped[str | None] = mapped_column(String(255))
    progress_done: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A fresh token per claim of the job by a worker: heartbeats and the final write are conditional
    # on it, so a worker that lost the job (taken over after a redelivery) cannot overwrite it.
    claim_token: Mapped[str | None] = mapped_column(String(36))
    # Where a pull stopped (post type, last page stored, counts so far), written in the same
    # transaction as each stored page: a redelivered, retried or next-slice run resumes from it.
    checkpoint: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    integration = relationship("SiteIntegration", back_populates="sync_events")

    __table_args__ = (
        Index("ix_sync_events_integration_recent", "integration_id", "id"),
        Index("ix_sync_events_integration_type_status", "integration_id", "event_type", "status"),
        # Jobs by state for /metrics: only the few queued and running rows are in it.
        Index(
            "ix_sync_events_active_status",
            "status",
            "event_type",
            postgresql_where=ACTIVE_JOBS_CONDITION,
            sqlite_where=ACTIVE_JOBS_CONDITION,
        ),
    )


class WebhookDelivery(Model):
    """One row per (site, webhook-id): the unique constraint makes deliveries idempotent."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), nullable=False)
    webhook_id: Mapped[str] = mapped_column(String(255), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    # Indexed for pruning: rows only need to outlive the plugin's retry window (a day).
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)

    __table_args__ = (UniqueConstraint("site_id", "webhook_id"),)


class Content(TimestampMixin, Model):
    __tablename__ = "contents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True, nullable=False)
    title: Mapped[str] = mapped_column(Text, default="", nullable=False)
    content_html: Mapped[str] = mapped_column(Text, default="", nullable=False)
    status: Mapped[str] = mapped_column(String(20), default="draft", nullable=False)
    content_type: Mapped[str] = mapped_column(String(64), default="post", nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(64))
    external_url: Mapped[str | None] = mapped_column(String(2048))
    external_status: Mapped[str | None] = mapped_column(String(40))
    external_modified_gmt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # modified_gmt of the newest webhook applied: orders deliveries without claiming that the
    # post's body was pulled (external_modified_gmt stays the pull's mark, so a pull still
    # fetches an edit that a status webhook reported).
    webhook_modified_gmt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    taxonomies: Mapped[dict] = mapped_column(JSONDict, default=dict, nullable=False)
    meta: Mapped[dict] = mapped_column("metadata", JSONDict, default=dict, nullable=False)
    source: Mapped[str] = mapped_column(String(20), default="platform", nullable=False)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Hash of the platform-side fields at the last push or pull; a differing current hash
    # means the platform copy changed since the last sync.
    synced_hash: Mapped[str | None] = mapped_column(String(64))
    # SQL NULL (not JSON null) when there is no conflict, so "conflict IS NOT NULL" counts them.
    conflict: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    # Written (and committed) just before a push creates the post in WordPress, cleared once its
    # external_id is stored: {"at": ISO time, "title": the title sent, "job_id"}. Set with no
    # external_id, a push may have created a post whose id was lost (the worker died), so the
    # next push looks for that post before creating another.
    push_intent: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    # Publishing (contract "Publishing"): NULL = not set, WordPress keeps or picks its own value.
    excerpt: Mapped[str | None] = mapped_column(Text)
    slug: Mapped[str | None] = mapped_column(String(200))
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A WordPress user id (digits) or login; a login is resolved to its id at push time.
    author: Mapped[str | None] = mapped_column(String(100))
    format: Mapped[str | None] = mapped_column(String(20))
    sticky: Mapped[bool | None] = mapped_column(Boolean)
    comment_status: Mapped[str | None] = mapped_column(String(10))
    featured_image: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    seo: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    # Read-only: the images of the last push ({"source_url", "external_id", "external_url",
    # "status", "error"} each).
    media: Mapped[list | None] = mapped_column(JSON(none_as_null=True))
    # Internal: the attachment that is the WordPress post's featured image, as last pushed or
    # pulled ({"id", "url"}), so a featured image read back from WordPress is not uploaded again.
    featured_media: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))

    __table_args__ = (
        UniqueConstraint("site_id", "content_type", "external_id"),
        # A webhook names a post by its WordPress id, its type optional (ids are unique across a
        # site's post types): without this index each delivery read every content row of its site.
        Index("ix_contents_site_external_id", "site_id", "external_id"),
        Index("ix_contents_site_external_status", "site_id", "external_status"),
        Index("ix_contents_site_status", "site_id", "status"),
    )


class SiteMedia(TimestampMixin, Model):
    """One image source (URL) uploaded to a site's media library (sync/media.py).

    Found by the URL (``url_hash``: a unique index cannot hold a 2,048-character URL) or by the
    bytes (``sha256``): the same URL or the same bytes again reuse ``attachment_id``. A row is
    committed ``pending`` before its upload and set ``done`` with the attachment after it, so a
    pending row left behind means "maybe uploaded": the next run looks the attachment up first.
    """

    __tablename__ = "site_media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), nullable=False)
    source_url: Mapped[str] = mapped_column(Text, nullable=False)
    url_hash: Mapped[str] = mapped_column(String(64), nullable=False)  # sha256 hex of source_url
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)  # of the image bytes
    state: Mapped[str] = mapped_column(String(10), default="pending", nullable=False)  # pending | done
    filename: Mapped[str] = mapped_column(String(255), nullable=False)  # as uploaded: <name>-<sha12>.<ext>
    mime: Mapped[str] = mapped_column(String(40), nullable=False)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    attachment_id: Mapped[int | None] = mapped_column(Integer)
    attachment_url: Mapped[str | None] = mapped_column(Text)
    # Attachment fields known to be set on the attachment ({"alt_text": ..., "caption": ...,
    # "title": ...}): a later post's alt text is only written where the attachment has none.
    attachment_fields: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))

    __table_args__ = (
        UniqueConstraint("site_id", "url_hash"),
        Index("ix_site_media_site_sha256", "site_id", "sha256"),
        CheckConstraint("state in ('pending','done')", name="state"),
    )
