"""Pages: a page of rows as a chosen person sees it ("view as"), in their language, logging
nothing; unknown pages answered with the error."""

from __future__ import annotations

import re

from fastapi import FastAPI

from personify.storage.registry import Stores

from .conftest import TestClient
from .shop import TENANT


def _rows(html: str) -> list[str]:
    return re.findall(r'data-row-id="([^"]+)"', html)


def test_view_as_shows_the_persons_rows(client: TestClient) -> None:
    page = client.get("/dashboard/pages?page=home&user_id=u01")
    assert page.status_code == 200, page.text
    rows = _rows(page.text)
    assert {"continue", "because_you_viewed", "recommended"} <= set(rows), rows
    assert "Continue where you left off" in page.text
    assert 'href="/dashboard/pages"' in page.text, "the page is in the navigation"
    items = re.findall(r'<li data-item-id="([^"]+)"', page.text)
    assert items and len(items) == len(set(items)), "no item in two rows"


def test_view_as_in_the_persons_language(client: TestClient) -> None:
    english = client.get("/dashboard/pages?user_id=u01&language=en")
    russian = client.get("/dashboard/pages?user_id=u01&language=ru")
    assert "Recommended for you" in english.text
    assert "Рекомендуем вам" in russian.text and "Recommended for you" not in russian.text


def test_a_preview_logs_nothing(app: FastAPI, client: TestClient, shop_stores: Stores) -> None:
    def impressions() -> int:
        return sum(1 for e in shop_stores.events.scan(TENANT) if e.type == "impression")

    app.state.runtime.engine.impressions.flush()
    before = impressions()
    assert client.get("/dashboard/pages?user_id=u01").status_code == 200
    app.state.runtime.engine.impressions.flush()
    assert impressions() == before
    decisions = app.state.runtime.experiments.decisions
    assert list(decisions.scan(TENANT, policy="page:home")) == []


def test_unknown_page(client: TestClient) -> None:
    page = client.get("/dashboard/pages?page=nowhere&user_id=u01")
    assert page.status_code == 404
    assert "no page" in page.text and "home" in page.text
