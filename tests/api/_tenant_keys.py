"""What the API tests share besides fixtures: the custom event types, one tenant's keys and
consents granted through the API (a module of its own: test modules cannot import ``conftest``
when several folders run)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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


def grant_consents(client: Any, keys: TenantKeys, users: Iterable[str],
                   purposes: Iterable[str] = ("personalization", "profiling")) -> None:
    """Each of ``users`` grants each of ``purposes`` through ``POST /v1/users/{id}/consents``
    (``client``: a ``TestClient``)."""
    for user in users:
        for purpose in purposes:
            r = client.post(f"/v1/users/{user}/consents", headers=keys.headers("admin"),
                            json={"purpose": purpose, "state": "granted", "text_version": "v1"})
            assert r.status_code == 201, r.text
