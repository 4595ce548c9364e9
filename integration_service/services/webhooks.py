"""WordPress webhooks: signature verification, idempotent delivery and applying the event.

Each accepted delivery is one database transaction and makes no outbound call:

1. the Content is found (by ``content_id`` within the key's site, else by the WordPress post id)
   and its row locked, so two deliveries for one post apply one after the other;
2. a ``WebhookDelivery(site_id, webhook_id)`` row is inserted; its unique constraint, not a
   read-then-write check, decides whether the webhook-id was seen before (a replay, or the same
   delivery arriving twice at once, is answered ``duplicate`` and applies nothing);
3. an event older than what is stored (the newest applied webhook's ``modified_gmt``, or the
   version a pull or push stored) is acknowledged and ignored, so out-of-order deliveries never
   move a post's status backwards;
4. a ``SyncEvent`` records the outcome (never the body or a secret) on the site's WordPress
   integration, whose ``last_webhook_at`` is set. A site without a WordPress integration still
   gets its Content updated, without a SyncEvent (a SyncEvent belongs to an integration).

Unknown content answers 404 and consumes no webhook-id (the plugin drops 404s; a later retry
after the content appeared would still be applied).

What a webhook writes, and why not more:

- status: ``external_status``, ``external_url``, ``last_synced_at`` and ``webhook_modified_gmt``.
  Not ``external_modified_gmt``: that is the version of the post whose body the service holds,
  and an incremental pull skips posts whose ``modified_gmt`` is not newer than it, so setting it
  here would make the next pull miss the edit that the webhook reported. Nor ``Content.status``
  (the platform's own workflow state, which pulls and pushes reconcile).
- metadata: term lists (``categories``, ``tags``, ``taxonomies``) go to ``metadata["terms"]``
  and other keys (``seo``, ...) are merged into ``metadata``. ``Content.taxonomies`` is left to
  pulls and pushes: it holds WordPress term *ids* that a push sends back, and the plugin reports
  term *names*; writing names there would break the next push.
"""

from __future__ import annotations

import binascii
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import case, or_, update
from sqlalchemy.exc import IntegrityError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ..errors import Conflict, NotAuthenticated, NotFound
from ..extensions import db, rowcount
from ..models import Content, Site, SiteIntegration, SyncEvent, WebhookDelivery, utcnow
from ..timeutil import iso_z, parse_iso

logger = logging.getLogger(__name__)

KIND_STATUS = "status"
KIND_METADATA = "metadata"
EVENT_TYPES = {KIND_STATUS: "webhook_status", KIND_METADATA: "webhook_metadata"}
LAST_WEBHOOK_RESOLUTION = timedelta(minutes=1)

# Standard Webhooks ids are short tokens such as "msg_2KWPBgLl..."; the column holds 255.
_WEBHOOK_ID = re.compile(r"^[\x21-\x7e]{1,255}$")
_MAX_SIGNATURE_HEADER = 4096
# Keys of the metadata object that are term lists; "modified_gmt" is envelope, not data.
_TAXONOMY_KEYS = ("categories", "tags")
TERMS_KEY = "terms"
_NOT_METADATA = {"modified_gmt", "taxonomies", TERMS_KEY, *_TAXONOMY_KEYS}


@dataclass(frozen=True)
class VerifiedDelivery:
    webhook_id: str
    timestamp: datetime


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes | str) -> str:
    """``v1,<base64 HMAC-SHA256>`` the way the plugin signs: the API key's UTF-8 bytes are the
    HMAC key (not base64-decoded, no ``whsec_`` prefix)."""
    data = body.decode() if isinstance(body, bytes) else body
    return Webhook(secret.encode()).sign(webhook_id, datetime.fromtimestamp(timestamp, UTC), data)


def verify_signature(secret: str, headers: Any, body: bytes) -> VerifiedDelivery:
    """Check the Standard Webhooks headers against the raw body; raise NotAuthenticated.

    ``standardwebhooks.Webhook`` takes the raw key bytes as they are (only a ``str`` secret is
    base64-decoded); it compares in constant time, accepts several space-separated signatures
    (key rotation) and refuses timestamps more than 5 minutes old or ahead.
    """
    webhook_id = (headers.get("webhook-id") or "").strip()
    timestamp = (headers.get("webhook-timestamp") or "").strip()
    signature = (headers.get("webhook-signature") or "").strip()
    if not (webhook_id and timestamp and signature):
        raise NotAuthenticated("The webhook-id, webhook-timestamp and webhook-signature headers are required.")
    if not _WEBHOOK_ID.match(webhook_id) or not timestamp.isdigit() or len(signature) > _MAX_SIGNATURE_HEADER:
        raise NotAuthenticated("The webhook headers are malformed.")
    # The library splits each "version,signature" pair with a bare unpack; keep only well-formed
    # v1 pairs so a malformed header is a 401, never a 500.
    candidates = [item for item in signature.split(" ") if item.count(",") == 1 and item.startswith("v1,")]
    if not candidates:
        raise NotAuthenticated("The webhook signature is not valid.")
    try:
        Webhook(secret.encode()).verify(
            body,
            {"webhook-id": webhook_id, "webhook-timestamp": timestamp, "webhook-signature": " ".join(candidates)},
            json_parse=False,
        )
    except WebhookVerificationError as exc:
        reason = str(exc)
        if "timestamp" in reason.lower():
            raise NotAuthenticated("The webhook timestamp is outside the 5-minute tolerance.") from exc
        raise NotAuthenticated("The webhook signature is not valid.") from exc
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise NotAuthenticated("The webhook signature is not valid.") from exc
    return VerifiedDelivery(webhook_id=webhook_id, timestamp=datetime.fromtimestamp(int(timestamp), UTC))


def prune_deliveries(now: datetime | None = None) -> int:
    """Forget delivery ids older than WEBHOOK_DEDUPE_RETENTION_HOURS (the plugin retries one id
    for at most a day, so older ids cannot come back). Returns how many were deleted."""
    hours = int(current_app.config["WEBHOOK_DEDUPE_RETENTION_HOURS"])
    cutoff = (now or utcnow()) - timedelta(hours=hours)
    result = db.session.execute(db.delete(WebhookDelivery).where(WebhookDelivery.received_at < cutoff))
    db.session.commit()
    return rowcount(result)


class WebhookService:
    """Receives the deliveries of one site (the one whose API key authenticated the request)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.site_id = site.id  # kept: a rollback expires the Site, and reading it again costs a SELECT

    @classmethod
    def for_site_id(cls, site_id: int) -> WebhookService:
        site = db.session.get(Site, site_id)
        if site is None:  # the key authenticated a moment ago; the site was deleted since
            raise NotAuthenticated("The API key is not valid.")
        return cls(site)

    def verify(self, headers: Any, body: bytes) -> VerifiedDelivery:
        return verify_signature(self.site.wp_api_key, headers, body)

    # -- the two events -------------------------------------------------------------------

    def receive_status(self, delivery: VerifiedDelivery, payload: dict[str, Any]) -> dict[str, Any]:
        return self._receive(KIND_STATUS, delivery, payload)

    def receive_metadata(self, delivery: VerifiedDelivery, payload: dict[str, Any]) -> dict[str, Any]:
        return self._receive(KIND_METADATA, delivery, payload)

    def _receive(self, kind: str, delivery: VerifiedDelivery, payload: dict[str, Any]) -> dict[str, Any]:
        base_details = {"outcome": None, "post_id": payload["post_id"]}
        try:
            content = self._find_content(payload)
        except (NotFound, Conflict) as exc:
            outcome = "not_found" if isinstance(exc, NotFound) else "conflict"
            # The failure is recorded (debug_status shows it) but the webhook-id stays unused.
            self._record(kind, delivery, {**base_details, "outcome": outcome}, status="failed", error=exc.message)
            db.session.commit()
            raise

        content_id = content.id
        db.session.add(WebhookDelivery(site_id=self.site_id, webhook_id=delivery.webhook_id, kind=kind))
        try:
            db.session.flush()
        except IntegrityError:
            # Seen before (or being applied by a concurrent request that committed first).
            db.session.rollback()
            event_id = self._record(kind, delivery, {**base_details, "outcome": "duplicate"}, content_id=content_id)
            db.session.commit()
            logger.info("webhook %s for site %s is a duplicate; not applied", delivery.webhook_id, self.site_id)
            return self._result(
                "duplicate",
                delivery,
                content_id=content_id,
                event_id=event_id,
                message="This webhook-id was received before; nothing was applied.",
            )

        if kind == KIND_STATUS:
            outcome, details = self._apply_status(content, payload)
        else:
            outcome, details = self._apply_metadata(content, payload)
        event_id = self._record(kind, delivery, {**base_details, **details, "outcome": outcome}, content_id=content_id)
        db.session.commit()  # ids were read before: after the commit they would cost a SELECT each
        logger.info("webhook %s %s for content %s: %s", kind, delivery.webhook_id, content_id, outcome)
        message = (
            "The event was applied."
            if outcome == "applied"
            else "The event is older than what is stored; it was acknowledged and ignored."
        )
        return self._result(outcome, delivery, content_id=content_id, event_id=event_id, message=message)

    # -- matching ---------------------------------------------------------------------------

    def _find_content(self, payload: dict[str, Any]) -> Content:
        post_id = str(payload["post_id"])
        content_id = payload.get("content_id")
        if content_id is not None:
            query = db.select(Content).where(Content.id == content_id, Content.site_id == self.site_id)
            content = db.session.scalar(query.with_for_update())
            if content is None:
                raise NotFound("Content not found.")
            if content.external_id is not None and content.external_id != post_id:
                # Typically a post duplicated with its meta: it must not overwrite the original.
                raise Conflict(
                    "This content is linked to another WordPress post.",
                    details={"content_id": content.id, "post_id": payload["post_id"]},
                )
            return content
        # Post ids are unique across post types within a WordPress site; prefer the stated type.
        query = db.select(Content).where(Content.site_id == self.site_id, Content.external_id == post_id)
        post_type = payload.get("post_type")
        if post_type:
            query = query.order_by(case((Content.content_type == post_type, 0), else_=1), Content.id)
        else:
            query = query.order_by(Content.id)
        content = db.session.scalar(query.limit(1).with_for_update())
        if content is None:
            raise NotFound("Content not found.")
        return content

    # -- applying ---------------------------------------------------------------------------

    @staticmethod
    def _stored_mark(content: Content) -> datetime | None:
        marks = [mark for mark in (content.webhook_modified_gmt, content.external_modified_gmt) if mark is not None]
        return max(marks) if marks else None

    def _is_stale(self, content: Content, modified_gmt: datetime | None) -> bool:
        # Equal times are applied: WordPress's modified_gmt has one-second resolution, and a
        # publish followed by a trash within one second must still end as "trash".
        stored = self._stored_mark(content)
        return modified_gmt is not None and stored is not None and modified_gmt < stored

    def _apply_status(self, content: Content, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        modified_gmt = payload.get("modified_gmt")
        details: dict[str, Any] = {"post_status": payload["post_status"], "modified_gmt": iso_z(modified_gmt)}
        if self._is_stale(content, modified_gmt):
            details["stored_modified_gmt"] = iso_z(self._stored_mark(content))
            return "ignored", details
        details["previous_status"] = content.external_status
        content.external_status = payload["post_status"]
        if "post_url" in payload:
            content.external_url = payload["post_url"]
        if modified_gmt is not None and (
            content.webhook_modified_gmt is None or modified_gmt > content.webhook_modified_gmt
        ):
            content.webhook_modified_gmt = modified_gmt
        content.last_synced_at = utcnow()
        return "applied", details

    def _apply_metadata(self, content: Content, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        metadata: dict[str, Any] = payload["metadata"]
        modified_gmt = payload.get("modified_gmt")
        if modified_gmt is None and isinstance(metadata.get("modified_gmt"), str):
            modified_gmt = parse_iso(metadata["modified_gmt"])
        details: dict[str, Any] = {"modified_gmt": iso_z(modified_gmt)}
        if self._is_stale(content, modified_gmt):
            details["stored_modified_gmt"] = iso_z(self._stored_mark(content))
            return "ignored", details
        # Terms are replaced per taxonomy (the plugin sends each one's full current set);
        # taxonomies it does not mention are kept. Other metadata keys are merged the same way.
        meta = dict(content.meta or {})
        terms = dict(meta.get(TERMS_KEY) or {}) if isinstance(meta.get(TERMS_KEY), dict) else {}
        for key in _TAXONOMY_KEYS:
            if key in metadata:
                terms[key] = list(metadata[key])
        for name, values in (metadata.get("taxonomies") or {}).items():
            terms[name] = list(values)
        meta.update({key: value for key, value in metadata.items() if key not in _NOT_METADATA})
        if terms:
            meta[TERMS_KEY] = terms
        content.meta = meta
        # Only status events move the ordering mark: a metadata event reports what changed, so it
        # must not make a queued status event of the same save look stale.
        content.last_synced_at = utcnow()
        details["taxonomies"] = sorted(
            {*[k for k in _TAXONOMY_KEYS if k in metadata], *(metadata.get("taxonomies") or {})}
        )
        details["metadata_keys"] = sorted(key for key in metadata if key not in _NOT_METADATA)
        return "applied", details

    # -- bookkeeping ------------------------------------------------------------------------

    def _integration(self) -> SiteIntegration | None:
        return db.session.scalar(
            db.select(SiteIntegration).where(
                SiteIntegration.site_id == self.site_id, SiteIntegration.platform == "wordpress"
            )
        )

    def _record(
        self,
        kind: str,
        delivery: VerifiedDelivery,
        details: dict[str, Any],
        *,
        status: str = "success",
        error: str | None = None,
        content_id: int | None = None,
    ) -> int | None:
        """Record the delivery as a SyncEvent of the site's WordPress integration; returns its id."""
        integration = self._integration()
        if integration is None:
            logger.info(
                "site %s has no WordPress integration; webhook %s not recorded as a SyncEvent",
                self.site_id,
                delivery.webhook_id,
            )
            return None
        now = utcnow()
        last = integration.last_webhook_at
        if last is None or now - last > LAST_WEBHOOK_RESOLUTION:
            # Kept to the minute: writing it on every delivery would make all deliveries of a
            # site wait for each other on this one row lock.
            db.session.execute(
                update(SiteIntegration)
                .where(
                    SiteIntegration.id == integration.id,
                    or_(
                        SiteIntegration.last_webhook_at.is_(None),
                        SiteIntegration.last_webhook_at < now - LAST_WEBHOOK_RESOLUTION,
                    ),
                )
                .values(last_webhook_at=now)
                .execution_options(synchronize_session=False)
            )
        event = SyncEvent(
            integration_id=integration.id,
            site_id=self.site_id,
            event_type=EVENT_TYPES[kind],
            action=kind,
            direction="from_external",
            status=status,
            details={key: value for key, value in details.items() if value is not None or key == "outcome"},
            error_message=error,
            content_id=content_id,
            webhook_id=delivery.webhook_id,
            started_at=now,
            finished_at=now,
        )
        db.session.add(event)
        db.session.flush()
        return event.id

    @staticmethod
    def _result(
        outcome: str, delivery: VerifiedDelivery, *, content_id: int | None, event_id: int | None, message: str
    ) -> dict[str, Any]:
        return {
            "status": outcome,
            "webhook_id": delivery.webhook_id,
            "content_id": content_id,
            "sync_event_id": event_id,
            "message": message,
        }
