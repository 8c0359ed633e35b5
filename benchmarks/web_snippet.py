"""The web snippet: its size gzipped, and the time from page load to the demo shop's home-row
widget rendered in the system Chromium (median of repeated runs, each a fresh browser context
of a returning visitor who consented earlier), against the API in demo mode over the bundled
Online Retail sample with a trained model, served by uvicorn on 127.0.0.1.

Run: python benchmarks/web_snippet.py [--runs 15]
Merges ``snippet_gzip_bytes`` and ``widget_visible_ms_median`` (plus their details) into the
``metrics`` of benchmarks/results/web.json, keeping the keys other scripts write there.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _web_json import merge_web_results
from personify.api.app import create_app
from personify.jobs.sample_data import load_sample
from personify.jobs.training import TrainingConfig, train_tenant
from personify.settings import Settings
from personify.storage.model_files import FileModelStore
from personify.storage.registry import open_stores
from personify.testing.live_server import running

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = ROOT / "sdk" / "js" / "personify.js"
TENANT = "default"
# Before any page script: a returning visitor's stored consent, and a watcher that notes when
# the widget is rendered (performance.now() counts from the navigation start).
WATCH = """
localStorage.setItem('personify:consent', '["personalization", "profiling"]');
new MutationObserver(function (changes, watcher) {
  var row = document.getElementById('home-row');
  if (row && row.getAttribute('data-personify-state') === 'rendered') {
    window.__widgetRenderedAt = performance.now(); watcher.disconnect();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-personify-state']});
"""


def chromium() -> str:
    for candidate in (os.environ.get("PERSONIFY_CHROMIUM"), "/usr/bin/chromium",
                      "/usr/bin/chromium-browser", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("Chromium is not installed (apt-get install -y chromium)")


def widget_times(base: str, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), args=["--headless=new", "--no-sandbox", "--disable-gpu"])
        for run in range(runs + 1):  # the first run warms the server and the browser up
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_init_script(WATCH)
            page = context.new_page()
            page.goto(base + "/demo-shop")
            page.wait_for_function("window.__widgetRenderedAt !== undefined", timeout=30_000)
            rendered = float(page.evaluate("window.__widgetRenderedAt"))
            if run:
                times.append(rendered)
            context.close()
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    source = SNIPPET.read_bytes()
    gzip_bytes = len(gzip.compress(source, 9))
    folder = Path(tempfile.mkdtemp(prefix="personify-web-bench-"))
    stores = open_stores(f"sqlite:///{folder / 'demo.db'}")
    load_sample(stores, TENANT)
    train_tenant(stores.events, FileModelStore(folder / "models"), TENANT,
                 TrainingConfig(train_ranker=False))
    settings = Settings(demo=True, model_dir=str(folder / "models"), database_url="memory://")
    app = create_app(settings, stores=stores)
    try:
        with running(app) as base:
            times = widget_times(base, args.runs)
    finally:
        app.state.runtime.close()
        stores.close()
        shutil.rmtree(folder, ignore_errors=True)
    metrics = {
        "snippet_gzip_bytes": gzip_bytes,
        "snippet_bytes": len(source),
        "widget_visible_ms_median": round(statistics.median(times), 1),
        "widget_visible_ms_max": round(max(times), 1),
        "widget_runs": len(times),
    }
    print(json.dumps(metrics, indent=2))
    print(merge_web_results(metrics, command="nice -n 10 python " + " ".join(sys.argv)))


if __name__ == "__main__":
    main()
