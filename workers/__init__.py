"""Celery tasks of the Integration Service (imported by the worker through autodiscovery)."""
