"""The web snippet in the system Chromium against the demo shop (docs/web.md): consent first,
exactly-once delivery after an offline period, identify at login, widgets with viewable
impressions and attributed clicks, Global Privacy Control, and the session-only mode.

One server and one browser per module; each test opens a fresh browser context (no cookies,
no storage). What reached the server is read from its stores, not from the page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dashboard.shop import load_shop, train_shop_model
from personify.api.app import create_app
from personify.api.routers.web import DEMO_SHOPPER
from personify.domain.events import Event
from personify.settings import Settings
from personify.storage.registry import Stores, open_stores
from personify.testing.live_server import running

pytestmark = pytest.mark.browser

TENANT = "default"
GPC_ON = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Stores]]:
    """(base URL, stores) of the API in demo mode over the test shop, person tokens on."""
    folder = tmp_path_factory.mktemp("web")
    stores = open_stores(f"sqlite:///{folder / 'shop.db'}")
    load_shop(stores)
    train_shop_model(stores, folder / "models")
    settings = Settings(demo=True, model_dir=str(folder / "models"), database_url="memory://",
                        person_token_secret="browser-test-person-token-secret")
    app = create_app(settings, stores=stores)
    try:
        with running(app) as url:
            yield url, stores
    finally:
        app.state.runtime.close()
        stores.close()


@pytest.fixture
def open_tab(chromium: Any, shop: tuple[str, Stores]) -> Iterator[Callable[..., Any]]:
    """Opens a tab in a fresh context; records every API request the page makes
    (``tab.api_calls``: (method, path) pairs) and fails the test on a script error."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(init_script: str | None = None) -> Any:
        context = chromium.new_context(viewport={"width": 1280, "height": 800},
                                       base_url=shop[0])
        if init_script:
            context.add_init_script(init_script)
        contexts.append(context)
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        tab.api_calls = []
        tab.on("request", lambda r: tab.api_calls.append(
            (r.method, r.url.removeprefix(shop[0]))) if "/v1/" in r.url else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        return tab

    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


def wait_for(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def events_of(stores: Stores, anonymous_id: str) -> list[Event]:
    return [e for e in stores.events.scan(TENANT) if e.anonymous_id == anonymous_id]


def visitors(stores: Stores) -> set[str | None]:
    """Every anonymous id with a stored event (a test's own visitor is new; an event of an
    earlier test's visitor may still arrive late, from a beacon)."""
    return {e.anonymous_id for e in stores.events.scan(TENANT)}


def storage_of(tab: Any) -> dict[str, Any]:
    return tab.evaluate("""() => ({
        local: Object.keys(localStorage), session: Object.keys(sessionStorage),
        cookie: document.cookie})""")


def accept(tab: Any) -> str:
    """Click the banner's Accept; the visitor's anonymous id."""
    tab.click("#consent-accept")
    return str(tab.evaluate("personify.anonymousId()"))


def test_nothing_is_stored_or_sent_before_consent_then_tracking_starts(
    open_tab: Callable[..., Any], shop: tuple[str, Stores]
) -> None:
    stores = shop[1]
    tab = open_tab()
    tab.goto("/demo-shop")
    tab.wait_for_selector("#consent-banner:not([hidden])")
    tab.wait_for_timeout(1500)  # longer than the snippet's flush interval
    assert tab.api_calls == []
    assert storage_of(tab) == {"local": [], "session": [], "cookie": ""}
    anon = accept(tab)
    assert anon.startswith("anon-")
    page_view = wait_for(lambda: [e for e in events_of(stores, anon) if e.type == "page"],
                         "the page view")
    assert page_view[0].context.page == "/demo-shop"
    assert f"personify_aid={anon}" in storage_of(tab)["cookie"]
    granted = wait_for(lambda: stores.consents.history(TENANT, anon), "the consent records")
    assert {(r.purpose, r.state.value) for r in granted} >= {
        ("personalization", "granted"), ("profiling", "granted")}
    # withdrawing stops at once: storage wiped, later clicks send nothing (the demo shop then
    # offers the session-only mode, which sends no event either)
    tab.click("#privacy")
    tab.wait_for_selector("#consent-banner:not([hidden])")
    assert tab.evaluate("personify.consent.status()") != "full"
    before = len(events_of(stores, anon))
    calls = len(tab.api_calls)
    tab.click("[data-personify-track=add_to_cart] >> nth=0")
    tab.wait_for_timeout(1500)
    assert storage_of(tab)["local"] == [] and "personify_aid" not in storage_of(tab)["cookie"]
    assert len(events_of(stores, anon)) == before
    assert all("/events" not in path for _, path in tab.api_calls[calls:])
    withdrawn = wait_for(lambda: [r for r in stores.consents.history(TENANT, anon)
                                  if r.state.value == "withdrawn"], "the withdrawal")
    assert {r.purpose for r in withdrawn} == {"personalization", "profiling"}


def test_events_made_offline_arrive_exactly_once(
    open_tab: Callable[..., Any], shop: tuple[str, Stores]
) -> None:
    stores = shop[1]
    tab = open_tab()
    tab.goto("/demo-shop")
    anon = accept(tab)
    wait_for(lambda: events_of(stores, anon), "the first batch")
    wait_for(lambda: tab.evaluate("localStorage.getItem('personify:queue')") == "[]",
             "the first batch acknowledged")
    tab.context.set_offline(True)
    for nth in range(3):
        tab.click(f"[data-personify-track=add_to_cart] >> nth={nth}")
    tab.wait_for_timeout(1500)  # the snippet tries, fails, keeps them queued
    queued = json.loads(tab.evaluate("localStorage.getItem('personify:queue')"))
    assert [e["type"] for e in queued] == ["add_to_cart"] * 3
    tab.context.set_offline(False)
    # back online and straight to another page: the beacon on page hide and the next page's
    # flush of the persistent queue may both deliver the same events
    tab.click(".card a >> nth=0")
    tab.wait_for_selector("#similar")
    carts = wait_for(lambda: [e for e in events_of(stores, anon) if e.type == "add_to_cart"],
                     "the offline events")
    tab.wait_for_timeout(1500)
    carts = [e for e in events_of(stores, anon) if e.type == "add_to_cart"]
    assert sorted(e.event_id for e in carts) == sorted(e["event_id"] for e in queued)
    assert wait_for(lambda: tab.evaluate("localStorage.getItem('personify:queue')") == "[]",
                    "the queue to drain")


def test_identify_merges_the_anonymous_history_into_the_user(
    open_tab: Callable[..., Any], shop: tuple[str, Stores]
) -> None:
    stores = shop[1]
    tab = open_tab()
    tab.goto("/demo-shop/item/i03")
    anon = accept(tab)
    view = wait_for(lambda: [e for e in events_of(stores, anon) if e.type == "view"],
                    "the item view")[0]
    assert view.item_id == "i03"
    tab.click("#login")
    tab.wait_for_selector(f"#who:has-text('Signed in as {DEMO_SHOPPER}')")
    user = stores.users.get(TENANT, DEMO_SHOPPER)
    assert user is not None and anon in user.anonymous_ids
    history = {e.event_id for e in stores.events.for_user(TENANT, DEMO_SHOPPER)}
    assert view.event_id in history


def test_a_widget_records_its_impression_only_when_seen_and_attributes_the_click(
    open_tab: Callable[..., Any], shop: tuple[str, Stores]
) -> None:
    stores = shop[1]
    tab = open_tab()
    tab.goto("/demo-shop")
    anon = accept(tab)
    tab.wait_for_selector("#home-row[data-personify-state=rendered]", state="attached")
    rid = tab.evaluate("document.getElementById('home-row')._pfy.rid")
    assert rid
    explanations = tab.locator("#home-row .personify-why").all_text_contents()
    assert explanations and all(text.strip() for text in explanations)
    tab.wait_for_timeout(1500)  # below the fold: no impression, whatever the flushes
    assert not [e for e in events_of(stores, anon) if e.type == "impression"]
    tab.locator("#home-row").scroll_into_view_if_needed()
    impression = wait_for(
        lambda: [e for e in events_of(stores, anon) if e.type == "impression"], "the impression")
    assert [(e.recommendation_id, e.event_id) for e in impression] == [(rid, f"imp-{rid}")]
    shown = tab.locator("#home-row [data-personify-item]").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('data-personify-item'))")
    assert impression[0].item_ids == shown
    tab.click("#home-row .personify-title >> nth=0")
    tab.wait_for_url("**/demo-shop/item/**")
    click = wait_for(lambda: [e for e in events_of(stores, anon) if e.type == "click"],
                     "the click")
    assert (click[0].item_id, click[0].recommendation_id) == (shown[0], rid)
    assert click[0].properties["widget"] == "home-row"


def test_global_privacy_control_blocks_tracking(
    open_tab: Callable[..., Any], shop: tuple[str, Stores]
) -> None:
    stores = shop[1]
    known = visitors(stores)
    tab = open_tab(GPC_ON)
    tab.goto("/demo-shop/item/i05")
    tab.wait_for_selector("#similar[data-personify-state]", state="attached")
    tab.click("#add")
    assert tab.is_hidden("#consent-banner")
    assert tab.evaluate("personify.consent.grant()") is False
    tab.wait_for_timeout(1500)
    assert {path.split("?")[0] for _, path in tab.api_calls} <= {"/v1/recommendations/session"}
    assert storage_of(tab)["local"] == [] and storage_of(tab)["cookie"] == ""
    assert visitors(stores) == known


def test_session_only_mode_keeps_the_visit_in_the_tab_and_stores_nothing(
    open_tab: Callable[..., Any], shop: tuple[str, Stores]
) -> None:
    stores = shop[1]
    known = visitors(stores)
    tab = open_tab()
    requests: list[Any] = []
    tab.on("request", lambda r: requests.append(r) if "/recommendations/session" in r.url
           else None)
    tab.goto("/demo-shop/item/i07")
    tab.click("#consent-session")
    tab.wait_for_selector("#similar[data-personify-state=rendered]", state="attached")
    tab.click("#add")
    tab.goto("/demo-shop")  # the same tab: the session continues
    tab.wait_for_selector("#home-row[data-personify-state=rendered]", state="attached")
    tab.locator("#home-row").scroll_into_view_if_needed()
    tab.wait_for_timeout(1500)
    body = json.loads(requests[-1].post_data)
    assert [(i["item_id"], i["type"]) for i in body["items"]] == [
        ("i07", "view"), ("i07", "add_to_cart")]
    assert set(body) <= {"items", "n", "widget"}
    assert "x-personify-anonymous-id" not in requests[-1].headers
    kept = storage_of(tab)
    assert kept["local"] == [] and kept["cookie"] == "" and kept["session"] == [
        "personify:session"]
    assert {path.split("?")[0] for _, path in tab.api_calls} == {"/v1/recommendations/session"}
    assert visitors(stores) == known


def test_a_site_template_is_filled_as_text_and_unsafe_links_are_dropped(
    open_tab: Callable[..., Any], shop: tuple[str, Stores]
) -> None:
    hostile = {
        "recommendation_id": "r-hostile", "personalized": False, "items": [{
            "item_id": "i01", "score": 1.0, "explanation": "<b>bold</b> claim",
            "item": {"title": "<img src=x onerror=window.__pwned=1>",
                     "properties": {"url": "javascript:window.__pwned=2",
                                    "image": "https://cdn.example/i01.png"}}}]}
    tab = open_tab()
    tab.route("**/v1/recommendations?*", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(hostile)))
    tab.goto("/demo-shop")
    accept(tab)
    tab.evaluate("""() => {
        const t = document.createElement('template');
        t.id = 'card';
        t.innerHTML = '<a class="t-link" data-field-href="url"><img class="t-img" ' +
          'data-field-src="image"><span class="t-title" data-field="title"></span></a>' +
          '<small class="t-why" data-field="explanation"></small>';
        document.body.prepend(t);
        const box = document.createElement('div');
        box.id = 'custom'; box.setAttribute('data-personify-widget', 'custom');
        box.setAttribute('data-template', 'card');
        document.querySelector('main').prepend(box);
        personify.scan();
    }""")
    tab.wait_for_selector("#custom[data-personify-state=rendered]")
    assert tab.text_content("#custom .t-title") == "<img src=x onerror=window.__pwned=1>"
    assert tab.text_content("#custom .t-why") == "<b>bold</b> claim"
    assert tab.locator("#custom img").count() == 1  # the template's own image only
    assert tab.get_attribute("#custom .t-img", "src") == "https://cdn.example/i01.png"
    assert tab.get_attribute("#custom .t-link", "href") is None  # javascript: dropped
    assert tab.locator("#custom b").count() == 0
    tab.wait_for_timeout(300)
    assert tab.evaluate("window.__pwned") is None


VISIBLE = """() => [...document.querySelectorAll('#page-home [data-personify-item]')].map(n => {
    const r = n.getBoundingClientRect(), clip = n.parentElement.getBoundingClientRect();
    const left = Math.max(r.left, clip.left, 0), right = Math.min(r.right, clip.right, innerWidth);
    const top = Math.max(r.top, clip.top, 0), bottom = Math.min(r.bottom, clip.bottom, innerHeight);
    const area = Math.max(0, right - left) * Math.max(0, bottom - top);
    return {row: n.closest('[data-personify-row]').getAttribute('data-personify-row'),
            position: +n.getAttribute('data-personify-position'),
            item: n.getAttribute('data-personify-item'),
            ratio: area / (r.width * r.height)};
})"""


def test_a_page_of_rows_reports_only_the_items_actually_seen(
    open_tab: Callable[..., Any], shop: tuple[str, Stores]
) -> None:
    stores = shop[1]
    tab = open_tab()
    tab.goto("/demo-shop/for-you")
    anon = accept(tab)
    tab.wait_for_selector("#page-home[data-personify-state=rendered]", state="attached")
    rows = tab.evaluate("""() => [...document.querySelectorAll('[data-personify-row]')].map(
        s => ({row: s._pfy.row_id, rid: s._pfy.rid, page: s._pfy.page_id}))""")
    assert rows and len({r["page"] for r in rows}) == 1
    rid_of = {r["row"]: r["rid"] for r in rows}

    def reported() -> dict[tuple[str, int], Event]:
        return {(e.properties["row_id"], e.properties["position"]): e
                for e in events_of(stores, anon) if e.type == "impression"}

    def check(seen: dict[tuple[str, int], float]) -> None:
        """Items at least 60 % on screen at some rest point were reported, items never above
        40 % were not (an item near half is left out of the check: the observer's 50 %)."""
        got = reported()
        clearly = {k for k, ratio in seen.items() if ratio >= 0.6}
        never = {k for k, ratio in seen.items() if ratio <= 0.4}
        assert clearly <= set(got), sorted(clearly - set(got))
        assert not (never & set(got)), sorted(never & set(got))
        for (row, position), event in got.items():
            rid = rid_of[row]
            assert (event.event_id, event.recommendation_id) == (f"imp-{rid}-{position}", rid)
            assert event.properties["page_id"] == rows[0]["page"]

    seen: dict[tuple[str, int], float] = {}

    def look() -> None:
        for node in tab.evaluate(VISIBLE):
            key = (node["row"], node["position"])
            seen[key] = max(seen.get(key, 0.0), node["ratio"])

    tab.wait_for_timeout(1500)  # the snippet's flush interval
    look()
    assert any(r >= 0.6 for r in seen.values()) and any(r <= 0.4 for r in seen.values()), (
        "the first screen shows some items and hides others")
    wait_for(lambda: {k for k, r in seen.items() if r >= 0.6} <= set(reported()),
             "the visible items' impressions")
    check(seen)
    # scroll the first row's carousel to its end: its hidden items come into view
    tab.evaluate("""() => { const l = document.querySelector('#page-home .personify-row');
                           l.scrollLeft = l.scrollWidth; }""")
    tab.wait_for_timeout(300)
    look()
    wait_for(lambda: {k for k, r in seen.items() if r >= 0.6} <= set(reported()),
             "the newly visible items' impressions")
    tab.wait_for_timeout(1500)
    check(seen)
    # the server logged no row impression itself (the snippet reports what was seen)
    assert all(e.event_id.count("-") >= 2 for e in events_of(stores, anon)
               if e.type == "impression")
    # a click on a row's item quotes the row and the page, so the row order learns
    first = tab.locator("#page-home .personify-title >> nth=0")
    item = first.evaluate("n => n.closest('[data-personify-item]')"
                          ".getAttribute('data-personify-item')")
    first.click()
    tab.wait_for_url("**/demo-shop/item/**")
    click = wait_for(lambda: [e for e in events_of(stores, anon) if e.type == "click"],
                     "the click")[0]
    assert click.item_id == item and click.recommendation_id == rows[0]["rid"]
    assert (click.properties["page_id"], click.properties["row_id"]) == (
        rows[0]["page"], rows[0]["row"])


@pytest.mark.parametrize("session_only", [False, True])
def test_with_tracking_off_the_snippet_sends_and_stores_nothing(
    open_tab: Callable[..., Any], shop: tuple[str, Stores], session_only: bool
) -> None:
    """The site setting ``tracking: false``: no banner, a grant is refused, tracking calls and
    tracked buttons send nothing; only the session-only mode's answers, when the site offers
    it, reach the server (and they store nothing)."""
    stores = shop[1]
    known = visitors(stores)
    tab = open_tab()
    options = f"tracking: false, sessionOnly: {str(session_only).lower()},"

    def site_code(route: Any) -> None:
        body = route.fetch().text()
        assert "sessionOnly: true," in body
        route.fulfill(status=200, content_type="application/javascript",
                      body=body.replace("sessionOnly: true,", options))

    tab.route("**/demo-shop/shop.js", site_code)
    tab.goto("/demo-shop/item/i04")
    tab.wait_for_selector("#similar[data-personify-state]" if session_only else "#add",
                          state="attached")
    assert tab.is_hidden("#consent-banner")
    assert tab.evaluate("personify.consent.grant()") is False
    assert tab.evaluate("personify.viewItem('i04')") is None
    assert tab.evaluate("personify.track('purchase', {item_id: 'i04'})") is None
    tab.click("#add")
    tab.click("#buy")
    tab.wait_for_timeout(1500)  # longer than the flush interval
    allowed = {"/v1/recommendations/session"} if session_only else set()
    assert {path.split("?")[0] for _, path in tab.api_calls} <= allowed
    assert tab.evaluate("personify.consent.status()") == ("session" if session_only else "off")
    kept = storage_of(tab)
    assert kept["local"] == [] and kept["cookie"] == ""
    assert kept["session"] == (["personify:session"] if session_only else [])
    assert visitors(stores) == known


def test_a_refused_consent_sends_and_stores_nothing(
    open_tab: Callable[..., Any], shop: tuple[str, Stores]
) -> None:
    stores = shop[1]
    known = visitors(stores)
    tab = open_tab()
    tab.goto("/demo-shop/item/i06")
    tab.click("#consent-decline")  # no session-only mode either
    tab.click("#add")
    tab.evaluate("personify.addToCart('i06')")
    # logging in after a refusal links nothing and records no consent: still refused
    tab.click("#login")
    tab.wait_for_selector("#who:has-text('Sign-in needs consent first')")
    tab.goto("/demo-shop")  # the next page remembers nothing and asks again
    tab.wait_for_selector("#consent-banner:not([hidden])")
    tab.click("[data-personify-track=add_to_cart] >> nth=0")
    tab.wait_for_timeout(1500)
    assert tab.api_calls == []
    assert storage_of(tab) == {"local": [], "session": [], "cookie": ""}
    assert visitors(stores) == known
