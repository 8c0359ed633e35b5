"""Users page: search, profile, consents, activity, "view as this user", test clicks, export and
erasure."""

from __future__ import annotations

import json
import re

from fastapi import FastAPI

from personify.domain.events import Event
from personify.storage.registry import Stores

from .conftest import TestClient, csrf_of
from .shop import TENANT


def recommended_ids(html: str) -> list[str]:
    return re.findall(r'<li data-item-id="([^"]+)"', html)


def test_search_finds_users_by_id_and_name(client: TestClient) -> None:
    page = client.get("/dashboard/users?q=Customer 1")
    assert page.status_code == 200
    assert "/dashboard/users/u01" in page.text and "/dashboard/users/u12" in page.text
    assert "/dashboard/users/u02" not in page.text
    assert "No users found" in client.get("/dashboard/users?q=nobody-like-this").text


def test_user_page_shows_profile_consents_and_activity(client: TestClient,
                                                       shop_stores: Stores) -> None:
    page = client.get("/dashboard/users/u01")
    assert page.status_code == 200
    assert "customer1@example.org" in page.text
    assert "personalization" in page.text and "granted" in page.text
    newest = shop_stores.events.for_user(TENANT, "u01", limit=1)[0]
    assert newest.timestamp.isoformat() in page.text
    assert "Inferred interests" in page.text and "lamps" in page.text  # u01 favours lamps
    assert client.get("/dashboard/users/nobody").status_code == 404


def test_view_as_user_explains_each_recommendation(client: TestClient) -> None:
    panel = client.get("/dashboard/users/u01/recommendations")
    assert panel.status_code == 200
    ids = recommended_ids(panel.text)
    assert len(ids) == 10
    assert 'class="reco-why"' in panel.text
    assert "Because you" in panel.text or "Popular" in panel.text or "Trending" in panel.text
    russian = client.get("/dashboard/users/u01/recommendations",
                         headers={"Accept-Language": "ru"})
    assert "Потому что" in russian.text or "Популярно" in russian.text or "тренде" in russian.text


def test_previews_are_not_logged_as_impressions(client: TestClient, shop_stores: Stores) -> None:
    before = shop_stores.events.count(TENANT)
    client.get("/dashboard/users/u01/recommendations")
    client.get("/dashboard/users/u01/recommendations?device=mobile&hour=21&country=DE")
    assert shop_stores.events.count(TENANT) == before


def test_context_switch_compares_with_the_default(client: TestClient) -> None:
    panel = client.get("/dashboard/users/u03/recommendations?device=mobile&hour=7&country=RU"
                       "&channel=app")
    assert panel.status_code == 200
    assert "compared with the default context" in panel.text
    ignored = client.get("/dashboard/users/u03/recommendations?device=toaster&hour=99")
    assert "compared with the default context" not in ignored.text


def test_a_test_click_changes_the_recommendations(client: TestClient, shop_stores: Stores) -> None:
    before = recommended_ids(client.get("/dashboard/users/u05/recommendations").text)
    clicked = before[0]
    response = client.post(
        "/dashboard/users/u05/click", data={"item_id": clicked},
        headers={"X-CSRF-Token": csrf_of(client), "HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "Click recorded" in response.text
    after = recommended_ids(response.text)
    assert after != before
    assert clicked not in after  # just interacted with: excluded for a day
    stored = shop_stores.events.for_user(TENANT, "u05", limit=1)[0]
    assert (stored.type, stored.item_id, stored.properties.get("origin")) == (
        "click", clicked, "dashboard")


def test_a_test_click_without_htmx_redirects_back(client: TestClient) -> None:
    response = client.post("/dashboard/users/u05/click",
                           data={"item_id": "i07", "csrf_token": csrf_of(client)},
                           follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/users/u05"


def test_export_downloads_profile_events_and_consents(client: TestClient,
                                                      shop_stores: Stores) -> None:
    response = client.get("/dashboard/users/u02/export")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="user-u02.json"'
    data = json.loads(response.text)
    assert data["profile"]["user_id"] == "u02"
    assert len(data["events"]) == len(shop_stores.events.for_user(TENANT, "u02", limit=10_000))
    assert {e["user_id"] for e in data["events"]} == {"u02"}
    assert data["consents"][0]["purpose"] == "email_marketing"
    Event.model_validate(data["events"][0])


def test_erase_needs_the_typed_id(client: TestClient, shop_stores: Stores) -> None:
    response = client.post("/dashboard/users/u04/erase",
                           data={"confirm": "u4", "csrf_token": csrf_of(client)})
    assert response.status_code == 400
    assert shop_stores.users.get(TENANT, "u04") is not None


def test_erase_deletes_everything_and_blocks_replays(app: FastAPI, client: TestClient,
                                                     shop_stores: Stores) -> None:
    events = len(shop_stores.events.for_user(TENANT, "u04", limit=10_000))
    response = client.post("/dashboard/users/u04/erase",
                           data={"confirm": "u04", "csrf_token": csrf_of(client)})
    assert response.status_code == 200
    assert f"<dd>{events}</dd>" in response.text
    assert shop_stores.users.get(TENANT, "u04") is None
    assert shop_stores.events.for_user(TENANT, "u04", limit=10) == []
    assert shop_stores.erasures.is_erased(TENANT, "u04")
    assert app.state.runtime.engine.state.user_state(TENANT, "u04").recent == []
    replay = app.state.runtime.ingestor.ingest(TENANT, [{"event_id": "late", "type": "view",
                                                 "user_id": "u04", "item_id": "i01",
                                                 "timestamp": "2024-01-01T00:00:00Z"}])
    assert replay.rejected and replay.rejected[0].code == "erased"
    assert "was erased" in client.get("/dashboard/users/u04").text


def test_user_page_shows_insights_with_rhythm_and_reasons(client: TestClient) -> None:
    page = client.get("/dashboard/users/u01")
    assert page.status_code == 200
    assert "Insights" in page.text and "Activity rhythm" in page.text
    assert page.text.count("<td style=\"background: rgba(37, 99, 235,") == 7 * 24
    assert "lamps" in page.text.split("Affinities", 1)[1]  # u01's strongest interest
    russian = client.get("/dashboard/users/u01", headers={"Accept-Language": "ru"})
    assert "Ритм активности" in russian.text and "Этап жизненного цикла" in russian.text


def test_user_page_shows_what_their_texts_say(client: TestClient, shop_stores: Stores) -> None:
    newest = shop_stores.events.for_user(TENANT, "u02", limit=1)[0]
    shop_stores.events.append(TENANT, [Event(
        event_id="u02-review", type="review", user_id="u02", timestamp=newest.timestamp,
        text="Ужасный сервис, курьер опоздал и нагрубил, я очень зла!")])
    page = client.get("/dashboard/users/u02")
    assert page.status_code == 200
    box = page.text.split("Their texts", 1)[1]
    assert "курьер" in box and "negative" in box and "CEDR" in box
    russian = client.get("/dashboard/users/u02", headers={"Accept-Language": "ru"})
    assert "Их тексты" in russian.text and "негатив" in russian.text


def test_the_state_panel_shows_what_the_engine_uses(
    client: TestClient, app: FastAPI, shop_stores: Stores
) -> None:
    """A customer whose purchases the live state does not know (stored before this process
    started) is served from their stored events: the panel says so and shows them, not 0."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    bought = [Event(event_id=f"hist-{k}", type="purchase", user_id="hist", item_id=f"i{k:02d}",
                    timestamp=now - timedelta(days=3, hours=k)) for k in range(1, 4)]
    shop_stores.events.append(TENANT, bought)
    page = client.get("/dashboard/users/hist").text
    assert "this person&#39;s stored events" in page or "this person's stored events" in page
    panel = page.split('data-testid="state-in-use"')[1].split("</dl>")[0]
    assert re.search(r"Bought items</dt><dd>3:", panel), panel
    assert "/dashboard/items/i01" in panel

    runtime = app.state.runtime
    click = Event(event_id="hist-click", type="click", user_id="hist", item_id="i05",
                  timestamp=datetime.now(UTC))
    assert not runtime.ingestor.ingest(TENANT, [click]).rejected
    live = client.get("/dashboard/users/hist").text
    assert "the live state (updated with each event)" in live

    # the chain's consent decision says no (what a withdrawn consent leads to)
    runtime.engine.service.personalization_allowed = lambda tenant, user: user != "hist"
    refused = client.get("/dashboard/users/hist").text
    assert "nothing of this person (answers are not personalized)" in refused
    assert 'data-testid="state-in-use"' not in refused
