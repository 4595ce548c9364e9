"""Encryption of secrets at rest with MultiFernet (key rotation: the first key encrypts,
every listed key decrypts)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy.types import Text, TypeDecorator

API_KEY_PREFIX = "igk_"


class SecretBox:
    def __init__(self, keys: str) -> None:
        fernets = [Fernet(key.strip().encode()) for key in keys.split(",") if key.strip()]
        if not fernets:
            raise RuntimeError("ENCRYPTION_KEYS must name at least one Fernet key")
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise RuntimeError("a stored secret cannot be decrypted with the configured keys") from exc

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()


def secret_box() -> SecretBox:
    return current_app.extensions["secret_box"]


class EncryptedText(TypeDecorator):
    """A string stored as a Fernet token."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else secret_box().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else secret_box().decrypt(value)


class EncryptedJSON(TypeDecorator):
    """A JSON object stored as one Fernet token, so a raw SELECT shows no secret."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: dict | None, dialect: Any) -> str | None:
        return None if value is None else secret_box().encrypt(json.dumps(value, sort_keys=True))

    def process_result_value(self, value: str | None, dialect: Any) -> dict | None:
        return None if value is None else json.loads(secret_box().decrypt(value))


def generate_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_digest(api_key: str) -> str:
    """Lookup digest of a high-entropy API key (a fast hash is enough: keys are random)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def mask_secret(value: str | None) -> str | None:
    if not value:
        return None
    return f"{value[:4]}…{value[-4:]}" if len(value) > 12 else "…"
