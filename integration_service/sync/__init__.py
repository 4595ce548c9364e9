"""Sync jobs: ``requests`` (API side: validate, record, enqueue; status), ``runner`` (the worker
side: one template, each job's body), ``jobs`` (job rows, sync lock, claim tokens, heartbeats),
``recovery`` (stuck jobs), ``engine`` (``ContentSyncService``: ``pull`` and ``push`` over the
shared parts in ``common``), ``structure`` (the site's post types and taxonomies), ``health``
(debug_status), ``schedule`` (schedule decisions, the beat dispatcher, completion backoff),
``gauges`` (the database gauges of /metrics) and ``tasks`` (the Celery tasks).

Imports go one way: ``schedule`` uses ``jobs``, ``recovery`` uses both; ``metrics`` imports
nothing of this package (``create_app`` registers ``gauges`` into it)."""
