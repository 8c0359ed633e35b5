"""API key authentication: where the secret is read from, how it is verified, and scopes.

A key belongs to one tenant; the tenant of every request is the key's tenant, never a value the
request names. A bootstrap admin key from the settings (or the fixed demo key in demo mode) acts
as an admin key of the default tenant.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime

from personify.domain.errors import Forbidden, Unauthorized
from personify.domain.keys import ApiKey, Scope
from personify.storage.ports import KeyStore

BOOTSTRAP_KEY_ID = "bootstrap"
"""The ``key_id`` of the principal behind the settings' admin key."""

ACCEPTED_CREDENTIALS = "an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


class Authenticator:
    """Turns a presented secret into the :class:`ApiKey` it belongs to, or raises Unauthorized."""

    def __init__(
        self, keys: KeyStore, *, bootstrap_secrets: Sequence[str] = (), default_tenant: str
    ) -> None:
        self.keys = keys
        self._bootstrap = [s.encode() for s in bootstrap_secrets if s]
        self._bootstrap_key = ApiKey(
            key_id=BOOTSTRAP_KEY_ID,
            tenant=default_tenant,
            name="bootstrap admin key (settings)",
            scopes=frozenset({Scope.ADMIN}),
            created_at=datetime.now(UTC),
        )

    def authenticate(self, secret: str | None) -> ApiKey:
        """The key for ``secret``; Unauthorized when missing, unknown or revoked."""
        if not secret:
            raise Unauthorized("no API key was presented", field="Authorization",
                               accepted=ACCEPTED_CREDENTIALS)
        presented = secret.encode()
        for candidate in self._bootstrap:
            if hmac.compare_digest(presented, candidate):
                return self._bootstrap_key
        key = self.keys.verify(secret)
        if key is None or key.revoked_at is not None:
            raise Unauthorized("the API key is unknown or revoked", field="Authorization",
                               accepted=ACCEPTED_CREDENTIALS)
        return key


def require_scope(key: ApiKey, scope: Scope) -> ApiKey:
    """``key`` if it carries ``scope`` (admin implies every scope), else Forbidden."""
    if not key.allows(scope):
        wanted = "'admin'" if scope == Scope.ADMIN else f"{scope.value!r} or 'admin'"
        raise Forbidden(
            f"this key lacks the {scope.value!r} scope",
            field="scope",
            accepted=f"a key with the {wanted} scope",
        )
    return key


def secret_from_headers(
    authorization: str | None, x_api_key: str | None, *, allow_basic: bool = False
) -> str | None:
    """The secret from ``Authorization: Bearer``, ``X-API-Key`` or (Segment-style) Basic auth
    with the key as user name."""
    if x_api_key:
        return x_api_key.strip()
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic" and allow_basic:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return user or password or None
    return None
