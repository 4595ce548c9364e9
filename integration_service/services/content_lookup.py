"""Statements of the pull that must stay linear in the number of stored posts.

(New module for code that belongs to ``services/content_sync.py``, which is being restructured:
it moves with the sync engine.)

A first full pull stores a site's rows faster than autovacuum analyzes them, so PostgreSQL
plans the per-page lookup of existing rows with no statistics for the site: for
``external_id IN (100 ids)`` it estimates one row for ``(site_id, content_type)``, scans the
unique index on those two columns and filters ``external_id`` afterwards, reading every row
stored so far on every page (quadratic in the post count). The shape below leaves the planner
no such choice on a never-analyzed table: one index probe on the full ``(site_id, content_type,
external_id)`` key per id (``LIMIT 1`` keeps the lateral subquery from being flattened into a
join it could reorder).

When the table has statistics but none that know the new site (the usual case: other sites were
analyzed), the site looks rare, every index that starts with ``site_id`` costs the same, and the
planner may probe ``(site_id, status)`` and filter the rest, which again reads every row of the
site per page. So the pull refreshes the statistics once, when it has created the first
``ANALYZE_AFTER_CREATED`` rows (``refresh_statistics``): from then on the site's size is known
and the full-key probe is the cheapest plan by far.

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, Subquery, func, insert, literal, text, true
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


ANALYZE_AFTER_CREATED = 1000


def refresh_statistics(created_before: int, created_now: int) -> None:
    """``ANALYZE contents`` once per pull, when its count of created rows crosses
    ``ANALYZE_AFTER_CREATED`` (a sample of the table: tens of milliseconds, against seconds of
    misplanned lookups). A database user that does not own the table gets a warning, no error."""
    if created_before < ANALYZE_AFTER_CREATED <= created_now and db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("ANALYZE contents"))
        db.session.commit()


def insert_contents(rows: Sequence[dict[str, Any]]) -> None:
    """One multi-row ``INSERT ... VALUES (...), (...)`` for a page of new rows: passing the list
    as executemany parameters sends one single-row INSERT per row (pipelined, but each parsed,
    planned and index-maintained on its own)."""
    if rows:
        db.session.execute(insert(Content).values(list(rows)))
