"""The main dashboard flows in headless Chromium against a real server: log in, see a user's
recommendations change after a click, create and read an experiment, preview a template, erase
a user; every page is screenshotted (kept when PERSONIFY_SCREENSHOTS_DIR is set)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from personify.experiments.ports import ExposureRecord
from personify.settings import DEMO_ADMIN_KEY

from .conftest import log_in, screenshot

pytestmark = pytest.mark.browser


def recommended(page: Any) -> list[str]:
    page.wait_for_selector("#recs li[data-item-id]")
    return [li.get_attribute("data-item-id") for li in page.query_selector_all("#recs li")]


def test_login_is_required_and_overview_draws_its_charts(page: Any) -> None:
    page.goto("/dashboard/users")
    assert "/dashboard/login" in page.url
    page.fill("#key", "not-the-key")
    page.click("button[type=submit]")
    assert page.locator(".flash-error").inner_text() == "That key is unknown or revoked."
    log_in(page)
    page.wait_for_selector("#chart-ctr-per-day canvas")
    assert page.locator("h1").first.inner_text() == "Overview"
    charts = page.locator("figure.chart").count()
    assert charts == 6 and page.locator("details.numbers").count() == charts
    page.locator("#chart-ctr-per-day summary").click()
    assert page.locator("#chart-ctr-per-day table tbody tr").count() >= 8
    screenshot(page, "overview")
    page.click("a[hreflang=ru]")
    page.wait_for_selector("#chart-ctr-per-day canvas")
    assert page.locator("h1").first.inner_text() == "Обзор"
    screenshot(page, "overview-ru")


def test_overview_on_a_phone(chromium: Any, live: tuple[str, FastAPI]) -> None:
    context = chromium.new_context(viewport={"width": 390, "height": 844}, base_url=live[0],
                                   is_mobile=True, has_touch=True)
    phone = context.new_page()
    log_in(phone)
    phone.wait_for_selector("#chart-aov-per-day canvas")
    assert not phone.locator(".main-nav").is_visible()  # folded behind the menu button
    phone.click("label.nav-button")
    assert phone.locator(".main-nav").is_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    screenshot(phone, "overview-phone")
    context.close()


def test_recommendations_change_after_a_click(page: Any) -> None:
    log_in(page)
    page.goto("/dashboard/users?q=Customer 5")
    screenshot(page, "users")
    page.click("a[href='/dashboard/users/u05']")
    before = recommended(page)
    assert len(before) == 10
    page.select_option("#click-item", before[0])
    page.click("#recs button[type=submit]")
    page.wait_for_selector("#recs .flash-ok")
    after = recommended(page)
    assert after != before and before[0] not in after
    page.select_option("#device", "mobile")
    page.wait_for_selector("text=compared with the default context")
    screenshot(page, "user")


def test_preview_with_weather_and_without_anti_repetition(page: Any) -> None:
    """Served twice through the API, a person's preview demotes what they were shown; the
    form's "Repeats: off" shows the list as if nothing had been shown, and the weather chosen
    travels with the panel's own requests."""
    log_in(page)
    auth = {"Authorization": f"Bearer {DEMO_ADMIN_KEY}"}
    served = []
    for _ in range(2):
        answer = page.request.get("/v1/recommendations?user_id=u09&n=10", headers=auth)
        assert answer.ok, answer.text()
        served.append([i["item_id"] for i in answer.json()["items"]])
    page.goto("/dashboard/users/u09")
    default = recommended(page)
    assert len(set(default) & set(served[0])) <= 5, (default, served)
    page.select_option("#repetition", "off")
    page.wait_for_selector("text=compared with the default context")
    off = recommended(page)
    assert len(set(off) & set(served[0])) >= 8, (off, served[0])
    page.select_option("#weather", "rain")
    page.fill("#temperature", "7")
    page.dispatch_event("#temperature", "change")
    page.wait_for_selector("#recs form[hx-post*='weather=rain'][hx-post*='temperature=7']")
    assert "repetition=off" in page.locator("#recs form").get_attribute("hx-post")
    screenshot(page, "user-context")


def test_create_and_read_an_experiment(page: Any, live: tuple[str, FastAPI]) -> None:
    log_in(page)
    page.goto("/dashboard/experiments")
    page.fill("#exp-name", "home-block-ease")
    page.fill("#exp-hypothesis", "Item-kNN recommendations raise conversion")
    page.fill("#exp-variants", "control, ease")
    page.check("input[name=guardrails][value=revenue]")
    page.click("#new-experiment button[type=submit]")
    page.wait_for_url("**/dashboard/experiments/home-block-ease")
    page.click("button:text-is('Start')")
    page.wait_for_selector(".badge.ok")
    page.wait_for_selector("[data-testid=no-exposures]")
    exposures = live[1].state.dashboard.exposures
    since = datetime.now(UTC) - timedelta(days=11)
    for u in range(30):
        exposures.record("default", ExposureRecord("home-block-ease",
                                                   "control" if u % 2 else "ease",
                                                   f"user:u{u:02d}", since))
    page.reload()
    verdict = page.wait_for_selector("[data-testid=verdict]").inner_text()
    assert verdict.startswith("Verdict:")
    assert page.locator("#results tbody tr").count() == 2  # conversion and the revenue guardrail
    screenshot(page, "experiment")
    page.goto("/dashboard/experiments")
    assert "home-block-ease" in page.locator("table").first.inner_text()
    screenshot(page, "experiments")


def test_preview_a_template(page: Any) -> None:
    log_in(page)
    page.goto("/dashboard/messaging?template=weekly_picks&user=u03")
    subject = page.wait_for_selector("[data-testid=preview-subject]")
    assert re.search(r"Customer 3, \d+ товар", subject.inner_text())
    page.fill("#preview-user", "u01")
    page.dispatch_event("#preview-user", "change")
    page.wait_for_selector("[data-testid=preview-subject]:has-text('picks for you')")
    editor = page.locator("#template-yaml")
    editor.fill(editor.input_value().replace(" for you this week'", " just for you'", 1))
    page.wait_for_selector("[data-testid=preview-subject]:has-text('just for you')")
    frame = page.frame_locator("iframe.preview-frame")
    assert frame.locator("li").count() >= 1
    screenshot(page, "messaging")


def test_erase_a_user(page: Any) -> None:
    log_in(page)
    page.goto("/dashboard/users/u07")
    page.once("dialog", lambda dialog: dialog.accept())
    page.fill("#confirm", "u07")
    page.click("button.danger")
    page.wait_for_selector("text=Everything stored about this person was deleted")
    screenshot(page, "user-erased")
    page.goto("/dashboard/users/u07")
    assert "This user was erased." in page.content()


def test_remaining_pages_render(page: Any) -> None:
    log_in(page)
    for path, name, ready in [
        ("/dashboard/items", "items", "table"),
        ("/dashboard/items/i01", "item", "#similar .reco-list"),
        ("/dashboard/models", "models", "#evaluation h3, #evaluation p"),
        ("/dashboard/settings", "settings", "table"),
    ]:
        page.goto(path)
        page.wait_for_selector(ready)
        screenshot(page, name)
    page.goto("/dashboard/settings")
    page.fill("#key-name", "web shop")
    page.click("form.row button[type=submit]")
    secret = page.wait_for_selector(".secret").inner_text()
    assert len(secret) >= 24
    page.reload()
    assert secret not in page.content()
