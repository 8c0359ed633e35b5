"""Settings: API keys (create with scopes, the secret shown once; revoke), consent purposes,
retention."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from personify.dashboard.pages.common import form_lists, form_values, page_router, tenant
from personify.dashboard.rendering import render
from personify.dashboard.state import dashboard, session, settings, stores
from personify.domain.consents import Purpose
from personify.domain.keys import Scope

router = page_router()
MAX_KEY_NAME = 100


def _page(request: Request, *, created: Any = None, secret: str = "", error: str = "",
          flash: str = "", status_code: int = 200) -> Response:
    who = tenant(request)
    keys = sorted(stores(request).keys.list(who), key=lambda k: k.created_at, reverse=True)
    return render(
        request,
        "settings.html",
        section="settings",
        keys=keys,
        scopes=[s.value for s in Scope],
        purposes=list(dict.fromkeys(
            [p.value for p in Purpose] + list(getattr(settings(request), "consent_purposes", []))
        )),
        created=created,
        secret=secret,
        error=error,
        flash=flash,
        retention=dict(getattr(settings(request), "retention_days", {}) or {}),
        current_key=session(request).key.key_id,
        status_code=status_code,
    )


@router.get("/settings")
def settings_page(request: Request) -> Response:
    return _page(request)


@router.post("/settings/keys")
async def create_key(request: Request) -> Response:
    """Create a key of this tenant; its secret appears in this answer only."""
    form = await form_values(request)
    chosen = await form_lists(request, "scopes")
    name = form.get("name", "").strip()[:MAX_KEY_NAME]
    scopes = [Scope(s) for s in chosen if s in {x.value for x in Scope}]
    if not name or not scopes:
        return _page(request, error="key_needs_name_and_scope", status_code=400)
    record, secret = stores(request).keys.create(tenant(request), name, scopes)
    return _page(request, created=record, secret=secret)


@router.post("/settings/keys/{key_id}/revoke")
def revoke_key(request: Request, key_id: str) -> Response:
    who = tenant(request)
    owned = {k.key_id for k in stores(request).keys.list(who)}
    if key_id not in owned or not stores(request).keys.revoke(key_id):
        return _page(request, error="key_not_found", status_code=404)
    dashboard(request).sessions.close_for_key(key_id)
    return _page(request, flash="key_revoked")
