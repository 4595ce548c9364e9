"""ContentSyncService, the sync engine: moves posts between a platform and the ``Content`` table.

It is the two directions over one run's state: ``pull`` (``from_external``: paged, incremental
by watermarks, resumable from the job's checkpoint) and ``push`` (``to_external``: what is new or
changed since its last sync). What both use (hashes, counts, progress, the post-to-row copy,
``SyncRun``) is in ``common``, re-exported here for the engine's callers. Conflicts (both sides
changed since the last sync) are recorded on the content and never resolved by overwriting
either side.
"""

from __future__ import annotations

from .common import (
    DEFAULT_POST_TYPES,
    MAX_ITEMS_IN_DETAILS,
    Progress,
    SaveCheckpoint,
    SliceDone,
    SyncCounts,
    SyncRun,
    apply_remote,
    content_hash,
    hash_of,
    remote_values,
    selected_post_types,
)
from .pull import Pull
from .push import Push

__all__ = [
    "DEFAULT_POST_TYPES",
    "MAX_ITEMS_IN_DETAILS",
    "ContentSyncService",
    "Progress",
    "SaveCheckpoint",
    "SliceDone",
    "SyncCounts",
    "SyncRun",
    "apply_remote",
    "content_hash",
    "hash_of",
    "remote_values",
    "selected_post_types",
]


class ContentSyncService(Pull, Push):
    """Pull and push for one integration's run (see ``pull`` and ``push``)."""
