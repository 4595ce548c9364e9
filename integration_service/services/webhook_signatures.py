"""Standard Webhooks signatures of the WordPress plugin's deliveries: ``verify_signature`` checks
the ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers against the raw body
(with the site's API key as the HMAC key) before anything is read from it; ``sign`` makes the
header the plugin would send (tests, benches).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ..errors import NotAuthenticated

# Standard Webhooks ids are short tokens such as "msg_2KWPBgLl..."; the column holds 255.
_WEBHOOK_ID = re.compile(r"^[\x21-\x7e]{1,255}$")
_MAX_SIGNATURE_HEADER = 4096


@dataclass(frozen=True)
class VerifiedDelivery:
    webhook_id: str
    timestamp: datetime


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes | str) -> str:
    """``v1,<base64 HMAC-SHA256>`` the way the plugin signs: the API key's UTF-8 bytes are the
    HMAC key (not base64-decoded, no ``whsec_`` prefix)."""
    data = body.decode() if isinstance(body, bytes) else body
    return Webhook(secret.encode()).sign(webhook_id, datetime.fromtimestamp(timestamp, UTC), data)


def verify_signature(secret: str, headers: Any, body: bytes) -> VerifiedDelivery:
    """Check the Standard Webhooks headers against the raw body; raise NotAuthenticated.

    ``standardwebhooks.Webhook`` takes the raw key bytes as they are (only a ``str`` secret is
    base64-decoded); it compares in constant time, accepts several space-separated signatures
    (key rotation) and refuses timestamps more than 5 minutes old or ahead.
    """
    webhook_id = (headers.get("webhook-id") or "").strip()
    timestamp = (headers.get("webhook-timestamp") or "").strip()
    signature = (headers.get("webhook-signature") or "").strip()
    if not (webhook_id and timestamp and signature):
        raise NotAuthenticated("The webhook-id, webhook-timestamp and webhook-signature headers are required.")
    if not _WEBHOOK_ID.match(webhook_id) or not timestamp.isdigit() or len(signature) > _MAX_SIGNATURE_HEADER:
        raise NotAuthenticated("The webhook headers are malformed.")
    # The library splits each "version,signature" pair with a bare unpack; keep only well-formed
    # v1 pairs so a malformed header is a 401, never a 500.
    candidates = [item for item in signature.split(" ") if item.count(",") == 1 and item.startswith("v1,")]
    if not candidates:
        raise NotAuthenticated("The webhook signature is not valid.")
    try:
        Webhook(secret.encode()).verify(
            body,
            {"webhook-id": webhook_id, "webhook-timestamp": timestamp, "webhook-signature": " ".join(candidates)},
            json_parse=False,
        )
    except WebhookVerificationError as exc:
        reason = str(exc)
        if "timestamp" in reason.lower():
            raise NotAuthenticated("The webhook timestamp is outside the 5-minute tolerance.") from exc
        raise NotAuthenticated("The webhook signature is not valid.") from exc
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise NotAuthenticated("The webhook signature is not valid.") from exc
    return VerifiedDelivery(webhook_id=webhook_id, timestamp=datetime.fromtimestamp(int(timestamp), UTC))
