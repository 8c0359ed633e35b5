"""The networking part of a user's page in headless Chromium, over the Stack Exchange network
demo: people to meet and the feed, every entry with its reasons, and the attribution the data
set's README requires wherever its content is shown (the source line, a link to the original
post, the author's name linked to their profile)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from dashboard.conftest import build_app, close_app
from personify.data.stackexchange import DATASET_NAME
from personify.jobs.network_demo import load_network_demo
from personify.jobs.networking import train_networking
from personify.jobs.record_sinks import default_ingestor
from personify.storage.registry import open_stores
from personify.testing.live_server import running

from .conftest import REPO_ROOT, log_in, screenshot

pytestmark = pytest.mark.browser
SITE = "https://quantumcomputing.stackexchange.com"
PERSON = "26"
"""An active member of the network (asks and answers on several topics)."""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory,
         datasets_dir: Path) -> Iterator[tuple[str, FastAPI]]:
    folder = tmp_path_factory.mktemp("network")
    stores = open_stores(f"sqlite:///{folder / 'network.db'}")
    load_network_demo(stores, "default", default_ingestor(stores), datasets_dir / DATASET_NAME)
    train_networking(stores, str(folder / "models"), "default")
    app = build_app(stores, folder / "models", results_dir=REPO_ROOT / "benchmarks" / "results")
    try:
        with running(app) as url:
            yield url, app
    finally:
        close_app(app)
        stores.close()


def test_people_to_meet_and_feed_with_reasons_and_attribution(page: Any) -> None:
    log_in(page)
    page.goto(f"/dashboard/users/{PERSON}")
    page.wait_for_selector("#network [data-testid=people] li")
    people = page.locator("#network [data-testid=people] > li")
    assert people.count() == 5
    for i in range(people.count()):
        person = people.nth(i)
        assert person.locator(".reco-why li").count() >= 1
        link = person.locator(".reco-title a")
        assert (link.get_attribute("href") or "").startswith(f"{SITE}/users/")
        assert link.inner_text().strip()
        assert "CC BY-SA" in person.locator(".attribution").inner_text()
    entries = page.locator("#network [data-testid=feed] > li")
    assert entries.count() >= 5
    sections = {entries.nth(i).get_attribute("data-section") for i in range(entries.count())}
    assert {"people", "content"} <= sections
    posts = page.locator("#network [data-testid=feed] > li[data-section=content]")
    assert posts.count() >= 1
    for i in range(posts.count()):
        post = posts.nth(i)
        assert (post.locator("a.original").get_attribute("href") or "").startswith(f"{SITE}/q/")
        author = post.locator(".author a")
        assert (author.get_attribute("href") or "").startswith(f"{SITE}/users/")
        assert author.inner_text().strip()
        assert "Quantum Computing Stack Exchange" in post.locator(".attribution").inner_text()
        assert post.locator(".reco-why li").count() >= 1
    for i in range(entries.count()):
        assert entries.nth(i).locator(".reco-why li").count() >= 1
    screenshot(page, "user-networking")
