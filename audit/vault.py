"""Encrypted content capture (legal hold): AES-256-GCM with one key per tenant.

Only when a decision's obligations ask for it (``content_capture: true``) and configuration
enables it. Reading is an audited administrative action (a ``content_read`` entry); erasure is
crypto-shredding: destroying the tenant key (a ``shred`` entry) leaves ciphertext nobody can read
while the log, which never held the content, still verifies.

Tenant keys live in the ``audit_tenant_keys`` table of the same database, each **wrapped**
(AES-256-GCM, bound to its tenant) under a key derived from the server secret, which never enters
the database: a copy of the database alone — a dump, a backup, a replica — holds no readable
capture. Keys written before wrapping (32 bytes, bare) are still read. Limitation, stated plainly:
database backups keep a shredded tenant's wrapped key until they expire, and with the server
secret it opens; for crypto-shredding that reaches backups the keys belong in a KMS or a separate
store whose backups expire sooner.
"""

from __future__ import annotations

import os
from typing import Protocol

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import AuditForbidden, ExportFilter, Scope, scoped_query
from audit.schema import audit_content, audit_log, audit_tenant_keys
from audit.store import append, make_entry, now_ts

__all__ = ["WRAP_PURPOSE", "ContentShredded", "ContentVault", "read_in_scope"]

# What the wrapping key is derived for (gateway.secrets_store.ServerSecret.derive).
WRAP_PURPOSE = "audit-content-key-wrap/v1"
_WRAPPED = b"W1"  # a wrapped key: this prefix, the nonce (12), the sealed key (32 + 16)


class ContentShredded(LookupError):
    """No readable content: never captured, or the tenant key was destroyed (or cannot be
    unwrapped: the server secret is not the one it was wrapped under)."""


def _aad(request_id: str, tenant: str) -> bytes:
    return f"portcullis-content/v1\n{tenant}\n{request_id}".encode()


def _key_aad(tenant: str) -> bytes:
    return f"portcullis-content-key/v1\n{tenant}".encode()


class Secret(Protocol):
    """The server secret (gateway.secrets_store.ServerSecret): a key derived per purpose."""

    def derive(self, purpose: str) -> bytes: ...


class ContentVault:
    @classmethod
    def under(cls, engine: AsyncEngine, writer: str, secret: Secret) -> ContentVault:
        """The vault whose tenant keys are stored wrapped under ``secret`` (the gateway's)."""
        return cls(engine, writer, secret.derive(WRAP_PURPOSE))

    def __init__(self, engine: AsyncEngine, writer: str, wrap_key: bytes | None = None) -> None:
        """``wrap_key``: the key tenant keys are stored under (see :meth:`under`); without it new
        tenant keys are stored bare (tests of the vault alone)."""
        self._engine = engine
        self._writer = writer
        self._wrap = AESGCM(wrap_key) if wrap_key is not None else None

    def _stored(self, tenant: str, key: bytes) -> bytes:
        if self._wrap is None:
            return key
        nonce = os.urandom(12)
        return _WRAPPED + nonce + self._wrap.encrypt(nonce, key, _key_aad(tenant))

    def _unwrapped(self, tenant: str, stored: bytes) -> bytes:
        if not stored.startswith(_WRAPPED) or len(stored) == 32:
            return stored  # written before wrapping
        if self._wrap is None:
            raise ContentShredded("the tenant key is wrapped and no server secret was given")
        try:
            return self._wrap.decrypt(stored[2:14], stored[14:], _key_aad(tenant))
        except InvalidTag:
            raise ContentShredded("the tenant key does not open with this server secret") from None

    async def _key(self, tenant: str, create: bool) -> bytes | None:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(audit_tenant_keys.c.key).where(audit_tenant_keys.c.tenant == tenant)
                )
            ).first()
            if row is not None:
                return self._unwrapped(tenant, bytes(row.key))
            if not create:
                return None
            key = AESGCM.generate_key(bit_length=256)
            await conn.execute(
                sa.insert(audit_tenant_keys).values(
                    tenant=tenant, key=self._stored(tenant, key), created_at=now_ts()
                )
            )
            return key

    async def capture(
        self, request_id: str, tenant: str, content: bytes, *, replace: bool = False
    ) -> None:
        """Seal ``content`` under ``tenant``'s key as the capture of ``request_id``; with
        ``replace``, in place of what was captured before (the request, then request and
        answer), in one transaction."""
        key = await self._key(tenant, create=True)
        assert key is not None
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, content, _aad(request_id, tenant))
        async with self._engine.begin() as conn:
            if replace:
                await conn.execute(
                    sa.delete(audit_content).where(audit_content.c.request_id == request_id)
                )
            await conn.execute(
                sa.insert(audit_content).values(
                    request_id=request_id,
                    tenant=tenant,
                    nonce=nonce,
                    ciphertext=sealed,
                    created_at=now_ts(),
                )
            )

    async def read(
        self,
        request_id: str,
        scope: Scope,
        allowed_roles: tuple[str, ...] = ("admin", "auditor"),
        *,
        in_scope: bool = True,
    ) -> bytes:
        """The capture of ``request_id``. Every attempt is a ``content_read`` entry, found or
        not; ``in_scope=False`` (the request is outside the reader's jurisdictions, as the
        caller found from the log) reads nothing and answers as for no capture."""
        scope.authorise(allowed_roles)
        row = None
        if in_scope:
            async with self._engine.connect() as conn:
                row = (
                    await conn.execute(
                        sa.select(audit_content).where(audit_content.c.request_id == request_id)
                    )
                ).first()
        async with self._engine.connect() as conn:  # every attempt is recorded, found or not
            await append(
                conn,
                [
                    make_entry(
                        "content_read",
                        {
                            "request_id": request_id,
                            "actor": scope.actor,
                            "action": {"tenant": row.tenant if row is not None else None},
                        },
                        self._writer,
                    )
                ],
            )
        if row is None:
            raise ContentShredded("no captured content for this request")
        key = await self._key(row.tenant, create=False)
        if key is None:
            raise ContentShredded("the tenant key was destroyed")
        try:
            return AESGCM(key).decrypt(
                bytes(row.nonce), bytes(row.ciphertext), _aad(request_id, row.tenant)
            )
        except InvalidTag:  # sealed under a key since destroyed (the tenant has a new one)
            raise ContentShredded("the tenant key was destroyed") from None

    async def shred(
        self, tenant: str, scope: Scope, allowed_roles: tuple[str, ...] = ("admin",)
    ) -> bool:
        """Destroy ``tenant``'s key; every capture of that tenant becomes unreadable."""
        if not scope.roles & set(allowed_roles):
            raise AuditForbidden("this role may not erase captured content")
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(audit_tenant_keys).where(audit_tenant_keys.c.tenant == tenant)
            )
        async with self._engine.connect() as conn:
            await append(
                conn,
                [
                    make_entry(
                        "shred",
                        {
                            "actor": scope.actor,
                            "action": {"tenant": tenant},
                        },
                        self._writer,
                    )
                ],
            )
        return bool(result.rowcount)


async def read_in_scope(
    vault: ContentVault,
    engine: AsyncEngine,
    request_id: str,
    scope: Scope,
    allowed_roles: tuple[str, ...] = ("admin", "auditor"),
) -> bytes:
    """:meth:`ContentVault.read`, for a reader limited to jurisdictions: the request counts as
    captured only if one of its log entries is within the reader's scope (an Australian auditor
    reads no Korean request's content, and is told only that there is none)."""
    scope.authorise(allowed_roles)
    where = scoped_query(ExportFilter(request_id=request_id), scope)
    async with engine.connect() as conn:
        seen = (
            await conn.execute(sa.select(audit_log.c.seq).where(where).limit(1))
        ).first() is not None
    return await vault.read(request_id, scope, allowed_roles, in_scope=seen)
