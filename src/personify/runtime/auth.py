"""API key authentication: where the secret is read from, how it is verified, and scopes.

A key belongs to one tenant; the tenant of every request is the key's tenant, never a value the
request names. A bootstrap admin key from the settings (or the fixed demo key in demo mode) acts
as an admin key of the default tenant.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from personify.domain.errors import Forbidden, Unauthorized
from personify.domain.keys import ApiKey, Scope
from personify.storage.ports import KeyStore

BOOTSTRAP_KEY_ID = "bootstrap"
"""The ``key_id`` of the principal behind the settings' admin key."""

DEMO_BROWSER_KEY_ID = "demo-browser"
"""The ``key_id`` of the fixed public browser key of demo mode (the demo shop's snippet)."""

ACCEPTED_CREDENTIALS = "an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


class Authenticator:
    """Turns a presented secret into the :class:`ApiKey` it belongs to, or raises Unauthorized."""

    def __init__(
        self,
        keys: KeyStore,
        *,
        bootstrap_secrets: Sequence[str] = (),
        default_tenant: str,
        browser_secrets: Sequence[str] = (),
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.cache_seconds = cache_seconds
        """How long a verified stored key is trusted without asking the store again (a key
        revoked elsewhere — another worker, the CLI — stops working within this time)."""
        self._clock = clock
        self._verified: dict[bytes, tuple[ApiKey, float]] = {}
        self._bootstrap = [s.encode() for s in bootstrap_secrets if s]
        self._bootstrap_key = ApiKey(
            key_id=BOOTSTRAP_KEY_ID,
            tenant=default_tenant,
            name="bootstrap admin key (settings)",
            scopes=frozenset({Scope.ADMIN}),
            created_at=datetime.now(UTC),
        )
        self._browser = [s.encode() for s in browser_secrets if s]
        self._browser_key = ApiKey(
            key_id=DEMO_BROWSER_KEY_ID,
            tenant=default_tenant,
            name="demo browser key (demo mode)",
            scopes=frozenset({Scope.BROWSER}),
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
        for candidate in self._browser:
            if hmac.compare_digest(presented, candidate):
                return self._browser_key
        digest = hashlib.sha256(presented).digest()
        now = self._clock()
        cached = self._verified.get(digest)
        if cached is not None and now - cached[1] < self.cache_seconds:
            return cached[0]
        key = self.keys.verify(secret)
        if key is None or key.revoked_at is not None:
            self._verified.pop(digest, None)
            raise Unauthorized("the API key is unknown or revoked", field="Authorization",
                               accepted=ACCEPTED_CREDENTIALS)
        if len(self._verified) >= 10_000:
            self._verified.clear()
        self._verified[digest] = (key, now)
        return key

    def forget(self, key_id: str) -> None:
        """Stop trusting a cached verification of ``key_id`` (it was revoked here)."""
        for digest, (key, _) in list(self._verified.items()):
            if key.key_id == key_id:
                self._verified.pop(digest, None)


class ForgettingKeyStore:
    """A :class:`KeyStore` whose ``revoke`` also drops the authenticator's cached verification,
    so a key revoked through this process stops working on its very next request."""

    def __init__(self, inner: KeyStore, authenticator: Authenticator) -> None:
        self.inner, self.authenticator = inner, authenticator

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def revoke(self, key_id: str) -> bool:
        try:
            return self.inner.revoke(key_id)
        finally:
            self.authenticator.forget(key_id)


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
