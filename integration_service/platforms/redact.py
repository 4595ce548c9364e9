"""Keep secrets out of what a platform call reports: a site may echo what it was sent (headers,
credentials) in an error body, and reports end up in responses, SyncEvents and logs."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
_HTML_TAG = re.compile(r"<[^>]+>")
_WP_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def secret_variants(secrets: Iterable[str | None]) -> list[str]:
    """The secrets plus the forms they travel in (an application password with and without
    spaces, and the Basic-auth token)."""
    values: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= 4:
            values.add(secret)
            compact = secret.replace(" ", "")
            if len(compact) >= 4:
                values.add(compact)
    return sorted(values, key=len, reverse=True)


def basic_token(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def scrub(value: Any, secrets: list[str]) -> Any:
    """Replace every occurrence of a secret in strings nested anywhere in ``value``."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {scrub(key, secrets): scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item, secrets) for item in value]
    return value


def safe_wp_code(value: Any) -> str | None:
    """A WordPress error code, only when it looks like one (it is echoed into reports)."""
    return value if isinstance(value, str) and _WP_CODE.match(value) else None


def safe_text(value: Any, limit: int = 200) -> str | None:
    """A short, tag-free excerpt of a site-provided message."""
    if not isinstance(value, str):
        return None
    text = " ".join(_HTML_TAG.sub(" ", value).split())
    return text[:limit] + ("…" if len(text) > limit else "") if text else None
