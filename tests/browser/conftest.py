"""End-to-end fixtures: a real uvicorn server on 127.0.0.1 (ephemeral port) over a temporary
SQLite database holding the test shop and a trained model, and the system Chromium driven by
Playwright. Without Chromium or the ``playwright`` package the tests skip with the reason;
``PERSONIFY_REQUIRE_SERVICES=1`` turns that skip into a failure.

Install the prerequisites (Debian): ``apt-get install -y chromium`` and
``pip install playwright`` (never ``playwright install``: the system browser is used).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from dashboard.conftest import build_app, close_app
from dashboard.shop import load_shop, train_shop_model
from personify.settings import DEMO_ADMIN_KEY
from personify.storage.registry import open_stores
from personify.testing.live_server import running

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIRE_SERVICES = os.environ.get("PERSONIFY_REQUIRE_SERVICES", "") not in ("", "0", "false")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
EXPECTED_CLIENT_ERRORS = "Failed to load resource: the server responded with a status of 4"
"""A refused login answers 401 and the browser logs it; 5xx answers and script errors count."""
SCREENSHOTS_ENV = "PERSONIFY_SCREENSHOTS_DIR"
"""Set to a folder (e.g. docs/screenshots) to keep the page screenshots the tests take."""


def unavailable(reason: str) -> None:
    """Skip, or fail when services are required (CI) — the pattern of tests/conftest.py."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required by PERSONIFY_REQUIRE_SERVICES but unavailable: {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    configured = os.environ.get("PERSONIFY_CHROMIUM")
    for candidate in ([configured] if configured else []) + list(CHROMIUM_CANDIDATES):
        if candidate and Path(candidate).exists():
            return candidate
    found = shutil.which("chromium")
    return found


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install playwright)")
    path = chromium_path()
    if path is None:
        unavailable("Chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FastAPI]]:
    """(base URL, app) of a server over a temporary SQLite database with the test shop."""
    folder = tmp_path_factory.mktemp("browser")
    stores = open_stores(f"sqlite:///{folder / 'shop.db'}")
    load_shop(stores)
    train_shop_model(stores, folder / "models")
    app = build_app(stores, folder / "models", results_dir=REPO_ROOT / "benchmarks" / "results")
    try:
        with running(app) as url:
            yield url, app
    finally:
        close_app(app)
        stores.close()


@pytest.fixture
def page(chromium: Any, live: tuple[str, FastAPI]) -> Iterator[Any]:
    """A fresh browser context (no cookies) with a desktop viewport; console errors (a CSP
    violation, a script error) fail the test."""
    context = chromium.new_context(viewport={"width": 1360, "height": 900}, locale="en-GB",
                                   base_url=live[0])
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" and not
           m.text.startswith(EXPECTED_CLIENT_ERRORS) else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.set_default_timeout(15_000)
    yield tab
    context.close()
    assert not errors, errors


def log_in(page: Any, key: str = DEMO_ADMIN_KEY) -> None:
    page.goto("/dashboard/")
    page.wait_for_url("**/dashboard/login**")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")


def screenshot(page: Any, name: str) -> None:
    """Save a full-page screenshot when PERSONIFY_SCREENSHOTS_DIR is set."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target / f"{name}.png"), full_page=True)
