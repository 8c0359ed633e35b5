"""``personify insights fit | show`` and the insights in ``personify privacy export``: only people
with profiling consent feed the fit."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import Result

from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.events import Event
from personify.insights.population import PopulationFiles
from personify.storage.registry import open_stores

Personify = Callable[..., Result]
AS_OF = datetime(2026, 1, 31, tzinfo=UTC)


def test_fit_show_and_export(personify: Personify, database_url: str, tmp_path: Path) -> None:
    stores = open_stores(database_url)
    try:
        events = []
        for c in range(40):
            if c < 30:
                stores.consents.append("default", ConsentRecord(
                    user_id=f"c{c}", purpose="profiling", state=ConsentState.GRANTED))
            for k in range(c % 4 + 1):
                events.append(Event(
                    event_id=f"c{c}-{k}", type="purchase", user_id=f"c{c}", item_id="i1",
                    price=10.0 + c, timestamp=AS_OF - timedelta(days=200 - 45 * k - c)))
        stores.events.append("default", events)
    finally:
        stores.close()
    result = personify("insights", "fit", "--as-of", "2026-01-31")
    assert result.exit_code == 0, result.output
    assert "30 customers" in result.output and "BG/NBD r=" in result.output
    population = PopulationFiles(tmp_path / "models").load("default")
    assert population is not None and population.as_of == AS_OF

    shown = personify("insights", "show", "c3")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["status"] == "ok" and data["profile"]["rfm"]["frequency"] == 4
    refused = json.loads(personify("insights", "show", "c35").output)
    assert refused["status"] == "not_allowed"  # no profiling consent (opt-in by default)

    export = json.loads(personify("privacy", "export", "c3").output)
    assert export["insights"]["profile"]["rfm"]["frequency"] == 4
    bad = personify("insights", "fit", "--as-of", "yesterday")
    assert bad.exit_code == 2 and "as_of" in bad.output


def test_evaluate_predictions_and_scores(
    personify: Personify, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("lightgbm")
    monkeypatch.setenv("PERSONIFY_CONSENT_DEFAULTS", '{"profiling": "opt-out"}')
    rng = np.random.default_rng(5)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    events = []
    for c in range(400):
        t, rate, life = rng.uniform(0, 200), rng.gamma(2.0, 0.03), rng.exponential(200)
        stop = t + life
        while t < min(stop, 400):
            events.append(Event(event_id=f"e{len(events)}", type="purchase", user_id=f"c{c}",
                                item_id="i1", value=float(rng.gamma(3, 10)),
                                timestamp=start + timedelta(days=float(t))))
            t += rng.exponential(1 / rate)
    stores = open_stores(database_url)
    try:
        stores.events.append("default", events)
    finally:
        stores.close()
    report = tmp_path / "report.json"
    result = personify("evaluate-predictions", "--rounds", "20", "-o", str(report))
    assert result.exit_code == 0, result.output
    assert "recency_rule" in result.output and "calibration" in result.output
    data = json.loads(report.read_text())
    assert data["churn"]["model"]["auc"] > 0.6 and "bgnbd" in data["propensity"]

    fitted = personify("insights", "fit", "--predictions", "--as-of", "2026-02-05")
    assert fitted.exit_code == 0, fitted.output
    assert "churn: trained" in fitted.output
    shown = json.loads(personify("insights", "show", "c1").output)
    churn = shown["predictions"]["churn_90d"]
    assert 0 <= churn["probability"] <= 1 and churn["reason"]["ru"]


def test_evaluate_predictions_without_history_is_a_clear_error(personify: Personify) -> None:
    result = personify("evaluate-predictions")
    assert result.exit_code == 2 and "tenant" in result.output


def test_text_command_and_show_include_text(
    personify: Personify, database_url: str,
) -> None:
    one = personify("insights", "text", "Ужасный сервис, курьер нагрубил, я в бешенстве!")
    assert one.exit_code == 0, one.output
    read = json.loads(one.output)
    assert read["language"] == "ru"
    assert max(read["sentiment"], key=read["sentiment"].get) == "negative"
    assert "курьер" in read["keywords"]
    other = json.loads(personify("insights", "text", "Guten Tag, wie geht es dir?").output)
    assert other["language"] == "other" and other["sentiment"] is None

    stores = open_stores(database_url)
    try:
        stores.consents.append("default", ConsentRecord(
            user_id="w1", purpose="profiling", state=ConsentState.GRANTED))
        stores.events.append("default", [Event(
            event_id="w1-1", type="review", user_id="w1", timestamp=AS_OF,
            text="Thank you so much, I love it!")])
    finally:
        stores.close()
    shown = json.loads(personify("insights", "show", "w1").output)
    assert shown["text"]["language"] == "en"
    assert shown["text"]["sentiment"]["last"] == "positive"

    missing = personify("insights", "train-text", "--datasets", "/nonexistent", "-o", "/tmp/x")
    assert missing.exit_code != 0 and "datasets" in missing.output


def test_segments_refresh_and_counts_over_time(personify: Personify, database_url: str,
                                              tmp_path: Path) -> None:
    from personify.domain.users import User
    from personify.insights.segments import SegmentFiles, SegmentIn

    now = datetime.now(UTC)
    stores = open_stores(database_url)
    try:
        stores.users.upsert("default", [User(user_id=f"p{c}") for c in range(6)])
        for c in range(6):
            stores.consents.append("default", ConsentRecord(
                user_id=f"p{c}", purpose="profiling", state=ConsentState.GRANTED))
        stores.events.append("default", [
            Event(event_id=f"p{c}-{k}", type="purchase", user_id=f"p{c}", item_id="i1",
                  price=100.0, timestamp=now - timedelta(days=10 + 5 * k))
            for c in range(6) for k in range(c)])
    finally:
        stores.close()
    SegmentFiles(tmp_path / "models", lambda: now).put(
        "default", "regulars", SegmentIn(name="Regulars", text="frequency >= 3"))
    refreshed = personify("insights", "refresh-segments")
    assert refreshed.exit_code == 0, refreshed.output
    assert "6 people" in refreshed.output and "regulars 3" in refreshed.output
    listed = personify("insights", "segments")
    assert listed.exit_code == 0 and "frequency >= 3" in listed.output
    assert "regulars" in listed.output and " 3 " in listed.output
    series = personify("insights", "segments", "--counts", "regulars")
    assert series.exit_code == 0 and now.strftime("%Y-%m-%d") in series.output
    missing = personify("insights", "segments", "--counts", "nope")
    assert missing.exit_code != 0 and "regulars" in missing.output


def test_topics_from_the_tenants_labelled_items(personify: Personify, database_url: str) -> None:
    from personify.domain.items import Item

    stores = open_stores(database_url)
    try:
        none = personify("insights", "topics", "a warm hat")
        assert none.exit_code != 0 and "labels" in none.output
        stores.catalog.upsert("default", [
            Item(item_id="h1", title="Wool winter hat", description="keeps your ears warm",
                 categories=["hats"]),
            Item(item_id="h2", title="Knitted beanie hat", categories=["hats"]),
            Item(item_id="s1", title="Running shoes", description="light foam sole",
                 categories=["shoes"]),
            Item(item_id="s2", title="Trail shoes with a grippy sole", categories=["shoes"]),
        ])
    finally:
        stores.close()
    result = personify("insights", "topics", "a warm winter hat", "--n", "1")
    assert result.exit_code == 0, result.output
    assert "hats" in result.output and "shoes" not in result.output
    assert "learnt from 4 items, 2 categories" in result.output
    bad = personify("insights", "topics", "x", "--labels", "colours")
    assert bad.exit_code != 0 and "categories or tags" in bad.output


def test_fit_with_clusters_and_the_clusters_command(personify: Personify, database_url: str,
                                                    ) -> None:
    pytest.importorskip("sklearn")
    stores = open_stores(database_url)
    try:
        assert "no insights fitted" in personify("insights", "clusters").output
        events = []
        for c in range(60):
            stores.consents.append("default", ConsentRecord(
                user_id=f"k{c}", purpose="profiling", state=ConsentState.GRANTED))
            for k in range(2 + (c % 2) * 8):
                events.append(Event(
                    event_id=f"k{c}-{k}", type="purchase", user_id=f"k{c}", item_id="i1",
                    price=3.0 if c % 2 else 300.0,
                    timestamp=(AS_OF - timedelta(days=5 + 9 * k)).replace(
                        hour=21 if c % 2 else 10)))
        stores.events.append("default", events)
    finally:
        stores.close()
    fitted = personify("insights", "fit", "--as-of", "2026-01-31", "--clusters")
    assert fitted.exit_code == 0, fitted.output
    assert "clusters: k=2" in fitted.output and "silhouette" in fitted.output
    listed = personify("insights", "clusters")
    assert listed.exit_code == 0 and "than average" in listed.output and "c1" in listed.output
