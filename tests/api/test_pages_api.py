"""``/v1/pages``: a personalized page of rows for one person (titles and reasons in their
language, no item in two rows, non-applicable rows left out), operator-defined pages and their
validation, row impressions in the event log, and row clicks reaching the row policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest
from _tenant_keys import grant_consents
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.domain.items import Item

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime.now(UTC)
CATEGORIES = ["shoes", "books", "toys"]


def _seed(client: TestClient, keys: TenantKeys) -> None:
    h = keys.headers("admin")
    grant_consents(client, keys, [*(f"u{u}" for u in range(20)), "ana"])
    for i in range(45):
        body: dict[str, Any] = {
            "title": f"Item {i}",
            "categories": [CATEGORIES[i % 3]],
            "created_at": (NOW - timedelta(days=60 - i)).isoformat(),
        }
        if i >= 40:
            start = NOW + timedelta(days=i - 38) if i < 43 else NOW - timedelta(days=2)
            body.update(type="event", properties={"starts_at": start.isoformat()})
            if start < NOW:  # an event that took place: the API refuses a start in the past
                runtime = cast(Any, client.app).state.runtime
                runtime.stores.catalog.upsert(keys.tenant, [Item(item_id=f"i{i}", **body)])
                continue
        assert client.put(f"/v1/items/i{i}", json=body, headers=h).status_code == 200
    events: list[dict[str, Any]] = []
    for u in range(20):
        for j in range(6):
            item = (u + j * 3) % 40
            events.append({
                "event_id": f"s{u}-{j}", "type": "view", "user_id": f"u{u}",
                "item_id": f"i{item}",
                "context": {"location": {"country": "DE"}},
                "timestamp": (NOW - timedelta(hours=5, minutes=u * 7 + j)).isoformat(),
            })
    # ana: shoes, then a book she put in her cart
    for j, item in enumerate(["i0", "i3", "i6", "i9", "i1"]):
        events.append({
            "event_id": f"ana-{j}", "type": "add_to_cart" if item == "i1" else "view",
            "user_id": "ana", "item_id": item,
            "timestamp": (NOW - timedelta(minutes=30 - j)).isoformat(),
        })
    r = client.post("/v1/events/batch", json={"events": events}, headers=keys.headers("ingest"))
    assert r.status_code == 200 and r.json()["stored"] == len(events), r.text


@pytest.fixture
def seeded(client: TestClient, tenant_a: TenantKeys) -> TestClient:
    _seed(client, tenant_a)
    return client


def _page(client: TestClient, keys: TenantKeys, name: str = "home", **params: Any) -> Any:
    r = client.get(f"/v1/pages/{name}", params=params, headers=keys.headers("serve"))
    assert r.status_code == 200, r.text
    return r.json()


def test_home_has_personal_rows_without_repeats(seeded: TestClient, tenant_a: TenantKeys) -> None:
    # the personal rows, asked by name: on the whole page the policy's exploration may place
    # "recommended" first, and a row whose few items it already showed is left out (no repeats)
    named = _page(seeded, tenant_a, user_id="ana",
                  rows=["continue", "because_you_viewed", "popular_in_category"])
    rows = {r["row_id"]: r for r in named["rows"]}
    assert set(rows) == {"continue", "because_you_viewed", "popular_in_category"}
    # continue: what she looked at, newest first, not bought
    assert rows["continue"]["title"] == "Continue where you left off"
    assert [i["item_id"] for i in rows["continue"]["items"]][:2] == ["i1", "i9"]
    # because you viewed her newest item
    assert rows["because_you_viewed"]["title"] == "Because you viewed Item 1"
    assert rows["popular_in_category"]["title"] == "Popular in shoes"
    page = _page(seeded, tenant_a, user_id="ana")
    assert page["page_id"].startswith("dec-") and page["language"] == "en"
    assert "recommended" in {r["row_id"] for r in page["rows"]}
    assert "trending_near_you" not in {r["row_id"] for r in page["rows"]}, "no place in context"
    shown = [i["item_id"] for r in page["rows"] for i in r["items"]]
    assert len(shown) == len(set(shown)), "an item appears in two rows"
    assert [r["position"] for r in page["rows"]] == list(range(len(page["rows"])))
    for row in page["rows"]:
        assert row["items"] and row["reason"] and row["recommendation_id"]
        assert 0 < row["propensity"] <= 1
        assert len(row["items"]) <= 10


def test_titles_follow_the_persons_language(seeded: TestClient, tenant_a: TenantKeys) -> None:
    r = seeded.put("/v1/users/ana", json={"profile": {"language": "ru-RU"}},
                   headers=tenant_a.headers("admin"))
    assert r.status_code == 200, r.text
    page = _page(seeded, tenant_a, user_id="ana", rows=["continue", "because_you_viewed"])
    rows = {r["row_id"]: r for r in page["rows"]}
    assert page["language"] == "ru"
    assert rows["continue"]["title"] == "Продолжите с того места, где остановились"
    assert rows["because_you_viewed"]["title"] == "Потому что вы смотрели «Item 1»"
    english = _page(seeded, tenant_a, user_id="ana", language="en")
    assert english["rows"][0]["title"].isascii()


def test_trending_near_you_needs_a_place(seeded: TestClient, tenant_a: TenantKeys) -> None:
    page = _page(seeded, tenant_a, user_id="ana", country="DE", city="Berlin")
    rows = {r["row_id"]: r for r in page["rows"]}
    assert rows["trending_near_you"]["title"] == "Trending near you"
    assert "Berlin" in rows["trending_near_you"]["reason"]


def test_upcoming_events_are_in_the_future(seeded: TestClient, tenant_a: TenantKeys) -> None:
    page = _page(seeded, tenant_a, user_id="ana", rows=["upcoming_events"])
    (row,) = page["rows"]
    assert {i["item_id"] for i in row["items"]} == {"i40", "i41", "i42"}


def test_anonymous_visitor_without_history_gets_the_non_personal_rows(
    seeded: TestClient, tenant_a: TenantKeys
) -> None:
    page = _page(seeded, tenant_a)
    kinds = {r["kind"] for r in page["rows"]}
    assert kinds and kinds <= {"new_for_you", "upcoming_events"}, kinds


def test_operator_defined_page(seeded: TestClient, tenant_a: TenantKeys) -> None:
    definition = {
        "rows": [
            {"id": "books", "kind": "custom", "sources": ["popular", "trending"],
             "filters": {"categories": ["books"]}, "n": 4,
             "title": {"en": "Good reads", "ru": "Что почитать"}},
            {"id": "toys", "kind": "popular_in_category", "category": "toys", "n": 3},
        ],
        "max_rows": 2,
    }
    h = tenant_a.headers("admin")
    r = seeded.put("/v1/pages/shop/definition", json=definition, headers=h)
    assert r.status_code == 200, r.text
    assert "shop" in seeded.get("/v1/pages", headers=h).json()["pages"]
    page = _page(seeded, tenant_a, "shop", user_id="u3", language="ru")
    rows = {r["row_id"]: r for r in page["rows"]}
    assert set(rows) == {"books", "toys"}
    assert rows["books"]["title"] == "Что почитать"
    assert rows["toys"]["title"] == "Популярное: toys"
    assert len(rows["books"]["items"]) == 4 and len(rows["toys"]["items"]) == 3
    items = seeded.get("/v1/items", headers=h)
    categories = {i["item_id"]: i["categories"] for i in items.json().get("items", [])}
    for item in rows["books"]["items"]:
        assert categories.get(item["item_id"], ["books"]) == ["books"]
    assert seeded.get("/v1/pages/shop/definition", headers=h).json()["stored"] is True
    assert seeded.delete("/v1/pages/shop/definition", headers=h).status_code == 200
    gone = seeded.get("/v1/pages/shop", headers=tenant_a.headers("serve"))
    assert gone.status_code == 404 and gone.json()["error"]["field"] == "name"


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"rows": [{"id": "x", "kind": "custom", "sources": ["nope"]}]}, "rows.0.sources"),
        ({"rows": [{"id": "x", "kind": "custom"}]}, "sources"),
        ({"rows": [{"id": "x", "kind": "sideways"}]}, "kind"),
        ({"rows": [{"id": "x", "kind": "new_for_you"}, {"id": "x", "kind": "continue"}]},
         "unique"),
        ({"rows": []}, "rows"),
        ({"rows": [{"id": "x", "kind": "new_for_you", "n": 500}]}, "n"),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(
    client: TestClient, tenant_a: TenantKeys, definition: dict[str, Any], field: str
) -> None:
    r = client.put("/v1/pages/bad/definition", json=definition, headers=tenant_a.headers())
    assert r.status_code == 422, r.text
    assert field in r.text


def test_unknown_pages_and_rows_are_refused(seeded: TestClient, tenant_a: TenantKeys) -> None:
    h = tenant_a.headers("serve")
    r = seeded.get("/v1/pages/nowhere", headers=h)
    assert r.status_code == 404 and r.json()["error"]["field"] == "name"
    r = seeded.get("/v1/pages/home", params={"rows": ["missing"]}, headers=h)
    assert r.status_code == 404 and r.json()["error"]["field"] == "rows"
    r = seeded.get("/v1/pages/home", params={"user_id": "a", "anonymous_id": "b"}, headers=h)
    assert r.status_code == 422
    r = seeded.get("/v1/pages/home/definition", headers=h)
    assert r.status_code == 403, "definitions need the admin scope"
    r = seeded.delete("/v1/pages/never/definition", headers=tenant_a.headers())
    assert r.status_code == 404


def test_rows_are_logged_and_clicks_reward_the_row(
    app: FastAPI, seeded: TestClient, tenant_a: TenantKeys
) -> None:
    page = _page(seeded, tenant_a, user_id="ana")
    runtime = app.state.runtime
    runtime.engine.impressions.flush()
    impressions = [e for e in runtime.stores.events.for_user("default", "ana", limit=100)
                   if e.type == "impression"]
    by_row = {e.context.extra.get("row_id"): e for e in impressions}
    for row in page["rows"]:
        logged = by_row[row["row_id"]]
        assert logged.recommendation_id == row["recommendation_id"]
        assert logged.context.extra["page_id"] == page["page_id"]
        assert logged.item_ids == [i["item_id"] for i in row["items"]]
    decision = runtime.experiments.decisions.get("default", page["page_id"])
    assert decision is not None and decision.policy == "page:home"
    # the decision was queued, not written on the request's path; the queue writes it out
    assert runtime.experiments.decisions.synchronous == 0
    runtime.experiments.decisions.flush()
    assert runtime.experiments.decisions.store.get("default", page["page_id"]) == decision
    # every shown row in the logged order with its logged propensity (a row whose items all
    # went to rows above it is chosen but not shown: it earns 0)
    shown = [r["row_id"] for r in page["rows"]]
    assert [c for c in decision.chosen if c in shown] == shown
    logged = dict(zip(decision.chosen, decision.propensities, strict=True))
    assert [logged[r["row_id"]] for r in page["rows"]] == [r["propensity"] for r in page["rows"]]

    row = page["rows"][-1]
    click = {
        "event_id": "click-row", "type": "click", "user_id": "ana",
        "item_id": row["items"][0]["item_id"], "recommendation_id": row["recommendation_id"],
        "properties": {"page_id": page["page_id"], "row_id": row["row_id"]},
        "timestamp": datetime.now(UTC).isoformat(),
    }
    r = seeded.post("/v1/events", json=click, headers=tenant_a.headers("ingest"))
    assert r.status_code in (200, 201, 202), r.text
    state = seeded.get("/v1/decisions/page:home", headers=tenant_a.headers()).json()
    assert state["updates"] == 1
    assert row["row_id"] in state["actions_learned"]
    # the same click again is not counted twice
    seeded.post("/v1/events", json={**click, "event_id": "click-row-2"},
                headers=tenant_a.headers("ingest"))
    assert seeded.get("/v1/decisions/page:home", headers=tenant_a.headers()).json()[
        "updates"] == 1


def test_only_rows_seen_enter_the_row_policy(
    app: FastAPI, seeded: TestClient, tenant_a: TenantKeys
) -> None:
    """impressions=reported (the snippet's way): nothing is logged when the page is served;
    a row whose impression arrives and is not clicked earns 0 when the window closes, a
    clicked row earns 1, and rows never scrolled into view neither earn nor lose."""
    runtime = app.state.runtime
    page = _page(seeded, tenant_a, user_id="ana", impressions="reported")
    rows = page["rows"]
    assert len(rows) >= 3, [r["row_id"] for r in rows]
    runtime.engine.impressions.flush()
    assert not [e for e in runtime.stores.events.for_user("default", "ana", limit=100)
                if e.type == "impression"], "reported: nothing logged when served"
    seen, clicked = rows[0], rows[1]
    at = datetime.now(UTC).isoformat()
    events = [
        {"event_id": f"imp-{seen['recommendation_id']}-{k}", "type": "impression",
         "user_id": "ana", "item_ids": [item["item_id"]],
         "recommendation_id": seen["recommendation_id"], "timestamp": at,
         "properties": {"page_id": page["page_id"], "row_id": seen["row_id"], "position": k}}
        for k, item in enumerate(seen["items"][:2])
    ] + [{
        "event_id": "click-seen-row", "type": "click", "user_id": "ana",
        "item_id": clicked["items"][0]["item_id"],
        "recommendation_id": clicked["recommendation_id"], "timestamp": at,
        "properties": {"page_id": page["page_id"], "row_id": clicked["row_id"]},
    }]
    r = seeded.post("/v1/events/batch", json={"events": events},
                    headers=tenant_a.headers("ingest"))
    assert r.status_code == 200 and r.json()["stored"] == len(events), r.text
    points = runtime.experiments.points
    later = datetime.now(UTC) + timedelta(days=1)
    points._clock = lambda: later  # the page's reward window (30 min) has closed
    points.close_expired("default", "page:home")
    state = seeded.get("/v1/decisions/page:home", headers=tenant_a.headers()).json()
    assert state["updates"] == 2, state
    assert state["actions_learned"] == sorted([seen["row_id"], clicked["row_id"]]), state


def test_served_rows_count_as_seen_and_browser_keys_report(
    app: FastAPI, seeded: TestClient, tenant_a: TenantKeys
) -> None:
    """impressions=served (a server key's default): every row answered is seen, so each
    unclicked one earns 0; a row the policy chose but left empty is not. A bad mode is refused
    naming the field."""
    runtime = app.state.runtime
    page = _page(seeded, tenant_a, user_id="ana")
    decision = runtime.experiments.decisions.get("default", page["page_id"])
    assert decision is not None and decision.seen_only
    points = runtime.experiments.points
    later = datetime.now(UTC) + timedelta(days=1)
    points._clock = lambda: later
    points.close_expired("default", "page:home")
    state = seeded.get("/v1/decisions/page:home", headers=tenant_a.headers()).json()
    assert state["updates"] == len(page["rows"]), (state, decision.chosen)
    assert state["actions_learned"] == sorted(r["row_id"] for r in page["rows"])
    r = seeded.get("/v1/pages/home", params={"user_id": "ana", "impressions": "sometimes"},
                   headers=tenant_a.headers("serve"))
    assert r.status_code == 422 and "impressions" in r.text, r.text


def test_rows_of_a_page_ask_each_source_once(
    app: FastAPI, seeded: TestClient, tenant_a: TenantKeys
) -> None:
    """Two rows asking the same source with the same filters (recommended and new for you
    both ask new_items) share its answer within the page; the next page asks again."""
    service = app.state.runtime.engine.service
    sources = service.sources
    inner = sources["new_items"]
    calls: list[int] = []

    class Counting:
        name, personal = inner.name, inner.personal

        def candidates(self, scope: Any, n: int) -> Any:
            calls.append(n)
            return inner.candidates(scope, n)

    service.sources = {**sources, "new_items": Counting()}
    page = _page(seeded, tenant_a, user_id="ana", rows=["recommended", "new_for_you"])
    assert {r["row_id"] for r in page["rows"]} == {"recommended", "new_for_you"}, page
    assert len(calls) == 1, calls
    _page(seeded, tenant_a, user_id="ana", rows=["recommended", "new_for_you"])
    assert len(calls) == 2, calls
