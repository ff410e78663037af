"""The server secret: keys are stored as HMACs under it, and it never enters the database.

Derived sub-keys (``derive``) give each use its own key: API-key digests, PII pseudonyms,
audit content digests.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ServerSecret", "load_server_secret"]


@dataclass(frozen=True, slots=True)
class ServerSecret:
    value: bytes
    # A short public name of the secret (every audit event carries it): computed once.
    secret_id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(b"portcullis-secret-id" + self.value).hexdigest()[:12]
        object.__setattr__(self, "secret_id", digest)

    def derive(self, purpose: str) -> bytes:
        return hmac.new(self.value, b"portcullis/" + purpose.encode(), hashlib.sha256).digest()

    def __repr__(self) -> str:  # never print the value
        return f"ServerSecret(id={self.secret_id})"


def load_server_secret(
    data_dir: Path, secret_file: Path | None = None, secret_env: str | None = None
) -> ServerSecret:
    """From the named env var, else the named file, else ``data_dir/secret.key`` (created 0600)."""
    if secret_env:
        raw = os.environ.get(secret_env)
        if not raw:
            raise ValueError(f"keys.secret_env: environment variable {secret_env} is empty")
        return ServerSecret(raw.encode())
    path = secret_file or data_dir / "secret.key"
    if not path.exists():
        if secret_file is not None:
            raise ValueError(f"keys.secret_file: {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    value = path.read_text().strip().encode()
    if len(value) < 32:
        raise ValueError(f"server secret in {path} is shorter than 32 bytes")
    return ServerSecret(value)
