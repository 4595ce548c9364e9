"""Marshmallow schemas, one module per area; they validate requests, shape responses and
generate the OpenAPI document."""

from .common import *  # noqa: F403 - the shared schemas are the package's public names
from .connection import *  # noqa: F403 - connection-test schemas
from .content import *  # noqa: F403
from .publishing import *  # noqa: F403 - the Content resource's publishing fields, publish_content
from .sync import *  # noqa: F403
from .webhooks import *  # noqa: F403 - WordPress webhook bodies
