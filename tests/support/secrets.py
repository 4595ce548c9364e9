"""The secrets a test must never find anywhere (issue 12 section 6), and a check of a Redis
database's every key (queues, unacked messages, results) for them."""

from __future__ import annotations

import base64
import json
from typing import Any

import redis

from tests.workers.fakewp import APP_PASSWORD


def secrets_of(app: Any, site: Any) -> dict[str, str]:
    basic = base64.b64encode(f"admin:{APP_PASSWORD}".encode()).decode()
    return {
        "app password": APP_PASSWORD,
        "app password without spaces": APP_PASSWORD.replace(" ", ""),
        "basic token": basic,
        "site key": site.plain_api_key,
        "SECRET_KEY": app.config["SECRET_KEY"],
        **{f"encryption key {i}": key for i, key in enumerate(str(app.config["ENCRYPTION_KEYS"]).split(","))},
    }


def redis_dump(redis_url: str) -> str:
    """Every value in the Redis database (its broker messages included), as text."""
    connection = redis.Redis.from_url(redis_url)
    parts: list[str] = []
    for key in connection.scan_iter(count=500):
        kind = connection.type(key).decode()
        if kind == "string":
            values: list[Any] = [connection.get(key)]
        elif kind == "list":
            values = list(connection.lrange(key, 0, -1))
        elif kind == "hash":
            values = list(connection.hgetall(key).items())
        elif kind == "set":
            values = list(connection.smembers(key))
        elif kind == "zset":
            values = list(connection.zrange(key, 0, -1))
        else:
            values = []
        parts.append(f"{key!r}: {values!r}")
        parts += [_decoded_body(value) for value in values]
    connection.close()
    return "\n".join(parts)


def _decoded_body(value: Any) -> str:
    """Kombu stores a message's body base64-encoded inside its JSON envelope: decode it too."""
    raw = value[-1] if isinstance(value, tuple) else value
    try:
        envelope = json.loads(raw)
        if isinstance(envelope, list):  # unacked: [message, exchange, routing key]
            envelope = envelope[0]
        return base64.b64decode(envelope["body"]).decode(errors="replace")
    except (ValueError, TypeError, KeyError, IndexError):
        return ""


def assert_no_secret_in_redis(redis_url: str, app: Any, site: Any, expect_task: bool = False) -> None:
    dump = redis_dump(redis_url)
    if expect_task:
        assert "integration.sync" in dump, "no task message in Redis to check"
    for name, secret in secrets_of(app, site).items():
        assert secret not in dump, f"the {name} is in a Redis value (broker message)"
