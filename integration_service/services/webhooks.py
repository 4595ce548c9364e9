"""WordPress webhooks: idempotent delivery and applying the event (the signature is checked
first, by ``webhook_signatures``).

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

import logging
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import Row, Table, bindparam, case, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable

from ..auth import Principal, authenticated_site
from ..errors import Conflict, NotAuthenticated, NotFound
from ..extensions import db, execute_core, rowcount
from ..models import Content, Site, SiteIntegration, SyncEvent, WebhookDelivery, utcnow
from ..timeutil import iso_z, parse_iso
from .webhook_signatures import VerifiedDelivery, sign, verify_signature  # noqa: F401 - sign: re-exported

logger = logging.getLogger(__name__)

KIND_STATUS = "status"
KIND_METADATA = "metadata"
EVENT_TYPES = {KIND_STATUS: "webhook_status", KIND_METADATA: "webhook_metadata"}
LAST_WEBHOOK_RESOLUTION = timedelta(minutes=1)

# Keys of the metadata object that are term lists; "modified_gmt" is envelope, not data.
_TAXONOMY_KEYS = ("categories", "tags")
TERMS_KEY = "terms"
_NOT_METADATA = {"modified_gmt", "taxonomies", TERMS_KEY, *_TAXONOMY_KEYS}


_UNKNOWN = object()  # the integration has not been read yet in this request


class LockedContent:
    """The columns of a locked Content row that a webhook reads; assignments are collected in
    ``changes`` for one UPDATE (no ORM object: nothing else of the row is loaded or tracked)."""

    def __init__(self, row: Any) -> None:
        object.__setattr__(self, "_row", row)
        object.__setattr__(self, "changes", {})

    def __getattr__(self, name: str) -> Any:
        changes = object.__getattribute__(self, "changes")
        return changes[name] if name in changes else object.__getattribute__(self, "_row")[name]

    def __setattr__(self, name: str, value: Any) -> None:
        self.changes[name] = value


# -- the statements of a delivery ------------------------------------------------------------
# Core statements on the tables, built once and executed with bound parameters. Building them
# per delivery (and computing each one's cache key, which SQLAlchemy memoizes on the statement
# object) was most of a delivery's Python time; the SQL sent is the same.
_contents = cast(Table, Content.__table__)
_integrations = cast(Table, SiteIntegration.__table__)
_events = cast(Table, SyncEvent.__table__)
_deliveries = cast(Table, WebhookDelivery.__table__)
_WORDPRESS = (_integrations.c.site_id == bindparam("site_id"), _integrations.c.platform == "wordpress")
# Assignable names of LockedContent -> column names (``meta`` is the "metadata" column).
_CONTENT_COLUMN = {"meta": "metadata"}


def _locked_query(*where: Any, order_by: tuple[Any, ...] = ()) -> Executable:
    """The Content row ``FOR UPDATE`` (of the content row only), with the site's WordPress
    integration (id, last_webhook_at) in the same round trip for ``_record``: one outer join
    (a site has at most one integration per platform), not a subquery per column."""
    c = _contents.c
    wordpress = _contents.outerjoin(
        _integrations, (_integrations.c.site_id == c.site_id) & (_integrations.c.platform == "wordpress")
    )
    query = (
        db.select(
            c.id,
            c.external_id,
            c.external_status,
            c.external_url,
            c.external_modified_gmt,
            c.webhook_modified_gmt,
            c.last_synced_at,
            c["metadata"].label("meta"),
            _integrations.c.id.label("integration_id"),
            _integrations.c.last_webhook_at.label("last_webhook"),
        )
        .select_from(wordpress)
        .where(*where)
        .with_for_update(of=_contents)
    )
    return query.order_by(*order_by).limit(1) if order_by else query


_BY_CONTENT_ID = _locked_query(_contents.c.id == bindparam("content_id"), _contents.c.site_id == bindparam("site_id"))
_BY_POST_ID = (_contents.c.site_id == bindparam("site_id"), _contents.c.external_id == bindparam("post_id"))
_BY_POST = _locked_query(*_BY_POST_ID, order_by=(_contents.c.id,))
# Post ids are unique across post types within a WordPress site; prefer the stated type.
_BY_POST_OF_TYPE = _locked_query(
    *_BY_POST_ID,
    order_by=(case((_contents.c.content_type == bindparam("post_type"), 0), else_=1), _contents.c.id),
)
_INTEGRATION = db.select(_integrations.c.id, _integrations.c.last_webhook_at).where(*_WORDPRESS)
_INSERT_DELIVERY = insert(_deliveries)
# The values come as parameters (column names); the WHERE's own parameter is named apart.
_UPDATE_CONTENT = update(_contents).where(_contents.c.id == bindparam("where_content_id"))
_STAMP_LAST_WEBHOOK = (
    update(_integrations)
    .where(
        _integrations.c.id == bindparam("integration_id"),
        or_(
            _integrations.c.last_webhook_at.is_(None),
            _integrations.c.last_webhook_at < bindparam("stale_before", type_=_integrations.c.last_webhook_at.type),
        ),
    )
    .values(last_webhook_at=bindparam("now", type_=_integrations.c.last_webhook_at.type))
)
# INSERT ... RETURNING id: the event is never read back, so no ORM object and no flush for its id.
_INSERT_EVENT = insert(_events).returning(_events.c.id)


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

    def __init__(self, site: Site | Row) -> None:
        self.site_id = site.id  # kept: a rollback expires the Site, and reading it again costs a SELECT
        self._secret = site.wp_api_key  # the signing key, decrypted once per request
        self._integration_row: Any = _UNKNOWN

    @classmethod
    def for_principal(cls, principal: Principal) -> WebhookService:
        """The service of the principal's site, reusing the Site that authentication loaded."""
        site = authenticated_site(principal) or db.session.get(Site, principal.site_id)
        if site is None:  # the key authenticated a moment ago; the site was deleted since
            raise NotAuthenticated("The API key is not valid.")
        return cls(site)

    def verify(self, headers: Any, body: bytes) -> VerifiedDelivery:
        return verify_signature(self._secret, headers, body)

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
        try:
            # A Core INSERT: no ORM object to track (the row is never read back in this request).
            execute_core(
                _INSERT_DELIVERY,
                {"site_id": self.site_id, "webhook_id": delivery.webhook_id, "kind": kind, "received_at": utcnow()},
            )
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
        if content.changes:
            values = {_CONTENT_COLUMN.get(name, name): value for name, value in content.changes.items()}
            execute_core(_UPDATE_CONTENT, {"where_content_id": content_id, **values})
        event_id = self._record(kind, delivery, {**base_details, **details, "outcome": outcome}, content_id=content_id)
        db.session.commit()  # ids were read before: after the commit they would cost a SELECT each
        # An applied delivery is a SyncEvent and a /metrics count already; at INFO it would be a
        # log line per post of every bulk edit on every site (and ~4 % of its CPU). The
        # unusual outcome (ignored: older than what is stored) stays at INFO, as duplicates do.
        log = logger.debug if outcome == "applied" else logger.info
        log("webhook %s %s for content %s: %s", kind, delivery.webhook_id, content_id, outcome)
        message = (
            "The event was applied."
            if outcome == "applied"
            else "The event is older than what is stored; it was acknowledged and ignored."
        )
        return self._result(outcome, delivery, content_id=content_id, event_id=event_id, message=message)

    # -- matching ---------------------------------------------------------------------------

    def _locked(self, query: Executable, **params: Any) -> LockedContent | None:
        """Run one of the ``_locked_query`` statements; keep the integration it read."""
        row = execute_core(query, {"site_id": self.site_id, **params}).first()
        if row is None:
            return None
        self._integration_row = (row.integration_id, row.last_webhook) if row.integration_id is not None else None
        return LockedContent(row._mapping)

    def _find_content(self, payload: dict[str, Any]) -> LockedContent:
        post_id = str(payload["post_id"])
        content_id = payload.get("content_id")
        if content_id is not None:
            content = self._locked(_BY_CONTENT_ID, content_id=content_id)
            if content is None:
                raise NotFound("Content not found.")
            if content.external_id is not None and content.external_id != post_id:
                # Typically a post duplicated with its meta: it must not overwrite the original.
                raise Conflict(
                    "This content is linked to another WordPress post.",
                    details={"content_id": content.id, "post_id": payload["post_id"]},
                )
            return content
        post_type = payload.get("post_type")
        if post_type:
            content = self._locked(_BY_POST_OF_TYPE, post_id=post_id, post_type=post_type)
        else:
            content = self._locked(_BY_POST, post_id=post_id)
        if content is None:
            raise NotFound("Content not found.")
        return content

    # -- applying ---------------------------------------------------------------------------

    @staticmethod
    def _stored_mark(content: LockedContent) -> datetime | None:
        marks = [mark for mark in (content.webhook_modified_gmt, content.external_modified_gmt) if mark is not None]
        return max(marks) if marks else None

    def _is_stale(self, content: LockedContent, modified_gmt: datetime | None) -> bool:
        # Equal times are applied: WordPress's modified_gmt has one-second resolution, and a
        # publish followed by a trash within one second must still end as "trash".
        stored = self._stored_mark(content)
        return modified_gmt is not None and stored is not None and modified_gmt < stored

    def _apply_status(self, content: LockedContent, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
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

    def _apply_metadata(self, content: LockedContent, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
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

    def _integration(self) -> tuple[int, datetime | None] | None:
        """(id, last_webhook_at) of the site's WordPress integration: read with the content row
        when one was found, else here. Only these columns: loading the ORM object would decrypt
        the integration's credentials, which a webhook never uses."""
        if self._integration_row is not _UNKNOWN:
            return self._integration_row
        row = execute_core(_INTEGRATION, {"site_id": self.site_id}).first()
        return (row.id, row.last_webhook_at) if row is not None else None

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
        integration_id, last = integration
        if last is None or now - last > LAST_WEBHOOK_RESOLUTION:
            # Kept to the minute: writing it on every delivery would make all deliveries of a
            # site wait for each other on this one row lock.
            execute_core(
                _STAMP_LAST_WEBHOOK,
                {"integration_id": integration_id, "stale_before": now - LAST_WEBHOOK_RESOLUTION, "now": now},
            )
        return execute_core(
            _INSERT_EVENT,
            {
                "integration_id": integration_id,
                "site_id": self.site_id,
                "event_type": EVENT_TYPES[kind],
                "action": kind,
                "direction": "from_external",
                "status": status,
                "details": {key: value for key, value in details.items() if value is not None or key == "outcome"},
                "error_message": error,
                "content_id": content_id,
                "webhook_id": delivery.webhook_id,
                "created_at": now,
                "started_at": now,
                "finished_at": now,
            },
        ).scalar_one()

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
