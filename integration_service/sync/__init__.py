"""Sync jobs: ``requests`` (API side: validate, record, enqueue; status), ``runner`` (the worker
side: one template, each job's body), ``jobs`` (job rows, sync lock, claim tokens, heartbeats,
stuck recovery), ``engine`` (pull/push, watermarks, conflicts), ``structure`` (the site's post
types and taxonomies), ``health`` (debug_status), ``schedule`` (schedule decisions, the beat
dispatcher, completion backoff) and ``tasks`` (the Celery tasks)."""
