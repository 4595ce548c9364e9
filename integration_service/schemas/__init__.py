"""Marshmallow schemas, one module per area; they validate requests, shape responses and
generate the OpenAPI document."""

from .common import *  # noqa: F403 - the shared schemas are the package's public names
