"""The worker entry point: Celery's autodiscovery imports this module, which registers every
task (the sync jobs' tasks live in ``integration_service.sync.tasks``) and the worker signals.
"""

from __future__ import annotations

from celery import shared_task

from integration_service.services.webhooks import prune_deliveries
from integration_service.sync.tasks import (  # noqa: F401 - registers the sync tasks
    SHORT_SOFT_TIME_LIMIT,
    SHORT_TIME_LIMIT,
    recover_stuck_jobs,
    sync,
    sync_wordpress_content,
    update_site_structure,
)

from . import signals  # noqa: F401 - connects the worker signal handlers


@shared_task(
    name="integration.prune_webhook_deliveries", time_limit=SHORT_TIME_LIMIT, soft_time_limit=SHORT_SOFT_TIME_LIMIT
)
def prune_webhook_deliveries() -> int:
    """Forget old webhook delivery ids; workers run this hourly in-process (see ``signals``)."""
    return prune_deliveries()
