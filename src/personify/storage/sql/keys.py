"""SQL API keys: only a SHA-256 of each secret is stored.

A secret is ``pfy_<key_id>_<random>`` where ``random`` is ``secrets.token_urlsafe(32)`` (256
bits). A slow password hash (scrypt, bcrypt) protects *low-entropy* passwords against guessing;
a 256-bit random secret cannot be guessed, so one SHA-256 is as safe and keeps ``verify`` well
under 0.1 ms. The ``key_id`` prefix finds the row without scanning; ``hmac.compare_digest``
compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from personify.domain.keys import ApiKey, Scope
from personify.storage.sql.database import Database
from personify.storage.sql.schema import api_keys

_K = api_keys.c
SECRET_PREFIX = "pfy"


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of ``secret`` (what the store keeps)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def key_id_of(secret: str) -> str | None:
    """The key id inside ``pfy_<key_id>_<random>``, or None if ``secret`` is not in that shape."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != SECRET_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


class SqlKeyStore:
    """The :class:`~personify.storage.ports.KeyStore` on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, tenant: str, name: str, scopes: Iterable[Scope]) -> tuple[ApiKey, str]:
        """A new key; the secret is returned once and only its hash is stored."""
        key_id = secrets.token_hex(8)
        secret = f"{SECRET_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            key_id=key_id,
            tenant=tenant,
            name=name,
            scopes=frozenset(Scope(scope) for scope in scopes),
            created_at=datetime.now(UTC),
        )
        with self._db.write() as conn:
            conn.execute(
                sa.insert(api_keys).values(
                    key_id=key.key_id,
                    tenant=tenant,
                    name=name,
                    scopes=",".join(sorted(scope.value for scope in key.scopes)),
                    secret_hash=hash_secret(secret),
                    created_at=key.created_at,
                )
            )
        return key, secret

    def verify(self, secret: str) -> ApiKey | None:
        """The active key whose secret is ``secret``; None if unknown, wrong or revoked."""
        key_id = key_id_of(secret) if isinstance(secret, str) else None
        if key_id is None:
            return None
        with self._db.read() as conn:
            row = conn.execute(sa.select(api_keys).where(_K.key_id == key_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
            return None
        return _key(row)

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (of ``tenant`` if given), oldest first, revoked ones included."""
        query = sa.select(api_keys).order_by(_K.created_at, _K.key_id)
        if tenant is not None:
            query = query.where(_K.tenant == tenant)
        with self._db.read() as conn:
            return [_key(row) for row in conn.execute(query)]

    def revoke(self, key_id: str) -> bool:
        """Revoke an active key; False if it does not exist or is already revoked."""
        statement = (
            sa.update(api_keys)
            .where(_K.key_id == key_id, _K.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        with self._db.write() as conn:
            return bool(getattr(conn.execute(statement), "rowcount", 0))


def _key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        tenant=row.tenant,
        name=row.name,
        scopes=frozenset(Scope(scope) for scope in row.scopes.split(",") if scope),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
