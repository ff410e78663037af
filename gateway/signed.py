"""Signed, expiring JSON tokens (:class:`Signer`): the console's single sign-on sessions
(:mod:`gateway.console_sessions`) and the sign-in flow's state cookie (:mod:`gateway.sso`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from gateway.secrets_store import ServerSecret

__all__ = ["Signer", "b64"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signed, expiring JSON: ``<prefix><payload>.<HMAC-SHA256>`` under a key derived from the
    server secret for one purpose (so a state cookie is never a session, nor one a key)."""

    def __init__(self, secret: ServerSecret, purpose: str, prefix: str = "") -> None:
        self._key = secret.derive(purpose)
        self._prefix = prefix

    def sign(self, payload: dict[str, Any]) -> str:
        body = b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return f"{self._prefix}{body}.{b64(mac)}"

    def verify(self, token: str | None) -> dict[str, Any] | None:
        """The payload, or None for anything not signed here, malformed or past its ``exp``."""
        if not token or len(token) > 8192 or not token.startswith(self._prefix):
            return None
        body, _, mac = token[len(self._prefix) :].partition(".")
        try:
            want = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(want, _unb64(mac)):
                return None
            payload = json.loads(_unb64(body))
        except (ValueError, UnicodeError):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
            return None
        return payload if payload["exp"] > time.time() else None
