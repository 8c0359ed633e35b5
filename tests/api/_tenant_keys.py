"""What the API tests share besides fixtures: the custom event types and one tenant's keys
(a module of its own: test modules cannot import ``conftest`` when several folders run)."""

from __future__ import annotations

from dataclasses import dataclass

CUSTOM_TYPES = ["signup", "video_started"]


@dataclass(frozen=True)
class TenantKeys:
    """The secrets of one tenant's keys, one per scope."""

    tenant: str
    admin: str
    ingest: str
    serve: str

    def headers(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, scope)}"}
