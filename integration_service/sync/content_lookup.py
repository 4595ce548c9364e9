"""The pull's lookup of existing rows, kept linear in the number of stored posts.

Used by the engine (``engine.ContentSyncService._upsert`` and ``_store_page``).

A first full pull stores a site's rows faster than autovacuum analyzes them. While the table's
statistics do not know the new site, ``external_id IN (100 ids)`` is planned as a scan of the
unique index on ``(site_id, content_type)`` that filters ``external_id`` afterwards, reading
every row of the site stored so far on every page: quadratic in the post count (measured: 4.4 ms
per page with 1k rows stored, 41 ms at 10k, 205 ms at 50k). Refreshing the statistics alone does
not cure an ``IN``: with the site known at a few hundred rows, scanning them still looks cheaper
than 100 index descents, and the estimate goes stale as the pull goes on (measured: 248 rows
read per post at 50k). So both:

* the lookup is one probe of the full ``(site_id, content_type, external_id)`` key per id (an
  ``unnest`` of the ids joined ``LATERAL`` to a ``LIMIT 1`` subquery, which the planner cannot
  flatten into a join it would reorder): its cost no longer depends on how many rows are stored;
* the pull runs ``ANALYZE contents`` once, after its first page of new rows
  (``refresh_statistics``): until then the site looks empty and every index that starts with
  ``site_id`` costs the same to the planner (it was seen probing ``(site_id, status)`` and
  filtering); once the site is known to hold rows, the full-key probe is the cheapest plan.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, Subquery, func, literal, text, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Content


def existing_contents(site_id: int, content_type: str, external_ids: Sequence[str]) -> list[Content]:
    """The stored Content rows of these WordPress ids (unique per site and post type)."""
    if not external_ids:
        return []
    if db.session.get_bind().dialect.name != "postgresql":
        # SQLite (the service-less test backend) has no unnest; its planner is not the problem.
        return list(
            db.session.scalars(
                db.select(Content).where(
                    Content.site_id == site_id,
                    Content.content_type == content_type,
                    Content.external_id.in_(list(external_ids)),
                )
            )
        )
    wanted = (
        func.unnest(literal(list(external_ids), ARRAY(String)))
        .table_valued("external_id")
        .render_derived(name="wanted")
    )
    probe: Subquery = (
        db.select(Content)
        .where(
            Content.site_id == site_id,
            Content.content_type == content_type,
            Content.external_id == wanted.c.external_id,
        )
        .limit(1)
        .lateral("stored")
    )
    stored = aliased(Content, probe)
    return list(db.session.scalars(db.select(stored).select_from(wanted).join(probe, true())))


ANALYZE_AFTER_CREATED = 100  # one page of new rows


def statistics_due(created_before: int, created_now: int) -> bool:
    """Whether ``refresh_statistics`` analyzes after this page (it commits: the page's rows
    must be committed with their position first)."""
    return created_before < ANALYZE_AFTER_CREATED <= created_now and db.session.get_bind().dialect.name == "postgresql"


def refresh_statistics(created_before: int, created_now: int) -> None:
    """``ANALYZE contents`` once per pull, when its count of created rows crosses
    ``ANALYZE_AFTER_CREATED`` (a sample of the table: tens of milliseconds, against seconds of
    misplanned lookups). A database user that does not own the table gets a warning, no error."""
    if statistics_due(created_before, created_now):
        db.session.execute(text("ANALYZE contents"))
        db.session.commit()
