"""Tenants: independent businesses or apps served by one installation."""

from __future__ import annotations

import re

DEFAULT_TENANT = "default"
"""The tenant of a plain install; users never have to name it."""

_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def validate_tenant_id(value: str) -> str:
    """Return ``value`` if it is a valid tenant id (lowercase letters, digits, ``_``, ``-``)."""
    from personify.domain.errors import InvalidInput

    if not isinstance(value, str) or not _TENANT_RE.match(value):
        raise InvalidInput(
            f"invalid tenant id {value!r}",
            field="tenant",
            accepted="1-64 characters: lowercase letters, digits, '_' or '-'; alphanumeric first",
        )
    return value
