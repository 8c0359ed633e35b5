"""Pseudonymization: a keyed hash (HMAC-SHA256) of a user id, per tenant.

The same id always maps to the same pseudonym under one secret, so analytics can still count
and join per person, while the pseudonym alone reveals nothing without the secret
(``settings.pseudonym_secret``). Logs and analytics outputs carry pseudonyms, never ids.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Any

PREFIX = "p_"
DIGEST_CHARS = 24
"""96 bits of the HMAC: collisions are negligible for any realistic number of people."""

PERSONAL_FIELDS: frozenset[str] = frozenset(
    {"user_id", "anonymous_id", "author_id", "email", "name", "phone", "birthday", "birth_year",
     "city", "bio", "ip", "latitude", "longitude"}
)
"""Field names treated as personal data when an export is anonymized for analysts."""

ID_FIELDS: frozenset[str] = frozenset({"user_id", "anonymous_id", "anonymous_ids", "author_id"})
"""Personal ids that are replaced by their pseudonym (other personal fields are dropped)."""


class Pseudonymizer:
    """``pseudonym(tenant, user_id)`` -> ``p_<24 hex>``; ``secret`` must stay the same forever."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym secret needs at least 16 bytes")
        self._secret = secret

    def pseudonym(self, tenant: str, user_id: str) -> str:
        message = f"{tenant}\x00{user_id}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).hexdigest()
        return PREFIX + digest[:DIGEST_CHARS]

    def anonymize(
        self, tenant: str, data: Any, *, fields: Iterable[str] = PERSONAL_FIELDS
    ) -> Any:
        """A copy of JSON-like ``data`` with ids pseudonymized and other personal fields
        dropped: what an analyst may see of an export."""
        names = frozenset(fields)
        return self._walk(tenant, data, names)

    def _walk(self, tenant: str, data: Any, names: frozenset[str]) -> Any:
        if isinstance(data, Mapping):
            out: dict[str, Any] = {}
            for key, value in data.items():
                if key in ID_FIELDS and value is not None:
                    out[key] = self._ids(tenant, value)
                elif key in names:
                    out[key] = None
                else:
                    out[key] = self._walk(tenant, value, names)
            return out
        if isinstance(data, list | tuple):
            return [self._walk(tenant, value, names) for value in data]
        return data

    def _ids(self, tenant: str, value: Any) -> Any:
        if isinstance(value, str):
            return self.pseudonym(tenant, value)
        if isinstance(value, list | tuple):
            return [self.pseudonym(tenant, v) for v in value if isinstance(v, str)]
        return None


def tombstone_key(user_id_hash: str) -> str:
    """The pseudonym of the person whose erasure tombstone carries ``user_id_hash`` under
    :class:`TombstoneKeyPseudonyms` (how model influence indexes are keyed)."""
    return PREFIX + user_id_hash[:DIGEST_CHARS]


class TombstoneKeyPseudonyms(Pseudonymizer):
    """Pseudonyms keyed by the erasure store's per-database HMAC key, for installations that
    set no ``pseudonym_secret`` (the key is generated once and kept in the database)."""

    def __init__(self, user_id_hash: Callable[[str, str], str]) -> None:
        self._hash = user_id_hash

    def pseudonym(self, tenant: str, user_id: str) -> str:
        return tombstone_key(self._hash(tenant, user_id))
