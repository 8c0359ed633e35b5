"""API keys: belong to a tenant, carry scopes, are stored only as a hash."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Scope(StrEnum):
    INGEST = "ingest"
    """Client-side event collection (safe to embed in a web page)."""
    SERVE = "serve"
    """Reading recommendations."""
    ADMIN = "admin"
    """Everything, including personal data and key management."""
    BROWSER = "browser"
    """A public, write-only web key (the snippet): events and recommendations for the current
    visitor only, from the tenant's allowed origins (docs/web.md, docs/security.md)."""
    METRICS = "metrics"
    """Reading ``/metrics`` (Prometheus) only: no personal data, no other route."""


class ApiKey(BaseModel):
    """A key's public record; the secret is shown once at creation and never stored."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    tenant: str
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    @property
    def browser_only(self) -> bool:
        """A ``browser`` key without any other scope: bound to one visitor per request."""
        return self.scopes == frozenset({Scope.BROWSER})
