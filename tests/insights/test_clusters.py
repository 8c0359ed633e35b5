"""Automatic clusters: planted behaviour types are found, described by what distinguishes them,
keep their ids across a refit, reach the person's insights and rules, and leave on erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from personify.domain.events import Event
from personify.insights.clusters import fit_clusters, person_features

pytest.importorskip("sklearn")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


def _people(seed: int = 0) -> list[Event]:
    """Evening bargain hunters (many small evening purchases) and daytime big spenders."""
    rng = np.random.default_rng(seed)
    events = []
    for p in range(60):
        evening = p % 2 == 0
        for k in range(int(rng.integers(8, 12)) if evening else int(rng.integers(2, 4))):
            day = NOW - timedelta(days=int(rng.integers(1, 120)))
            hour = int(rng.integers(19, 23)) if evening else int(rng.integers(9, 15))
            events.append(Event(
                event_id=f"e{seed}-{p}-{k}", type="purchase", user_id=f"p{p}", item_id="i",
                price=float(rng.uniform(2, 6)) if evening else float(rng.uniform(200, 400)),
                timestamp=day.replace(hour=hour, minute=0)))
    return events


def test_planted_types_are_found_described_and_stable_across_refits() -> None:
    rows = person_features(_people(), NOW)
    first = fit_clusters(rows)
    assert first["fitted"] and first["k"] == 2 and first["silhouette"] > 0.3
    members = first["members"]
    evening = {members[f"p{p}"] for p in range(0, 60, 2)}
    assert len(evening) == 1 and members["p1"] not in evening
    (cid,) = evening
    text = next(c for c in first["clusters"] if c["id"] == cid)["description"]
    assert "more evening activity" in text["en"] or "more purchase days" in text["en"]
    assert "раза" in text["ru"]
    # a refit on new behaviour of the same people: same ids for the same types
    again = fit_clusters(person_features(_people(seed=1), NOW), previous=first)
    assert again["members"]["p0"] == cid and again["members"]["p1"] == members["p1"]
    assert again["agreement_with_previous"] == 1.0


def test_too_few_people_say_so() -> None:
    few = {f"p{i}": [1.0] * 8 for i in range(10)}
    out = fit_clusters(few)
    assert out["fitted"] is False and "at least" in out["reason"]


def test_clusters_reach_insights_rules_and_leave_on_erasure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from personify.insights.population import PopulationFiles
    from personify.insights.segments import SegmentFiles, SegmentIn, SegmentTracker
    from personify.insights.service import InsightsService, template_variables
    from personify.jobs.insights import fit_insights
    from personify.storage.registry import open_stores

    stores = open_stores("memory://")
    try:
        stores.events.append("t", _people())
        fit_insights(stores, tmp_path, "t", as_of=NOW, clusters=True, clock=lambda: NOW)
        files = SegmentFiles(tmp_path, lambda: NOW)
        population = PopulationFiles(tmp_path).load("t")
        assert population is not None
        cid = population.clusters["members"]["p0"]
        files.put("t", "night_owls", SegmentIn(text=f'cluster = "{cid}"'))
        service = InsightsService(
            events=stores.events, users=stores.users, catalog=stores.catalog,
            populations=PopulationFiles(tmp_path), may_profile=lambda t, u: True,
            tracker=SegmentTracker(files, lambda: NOW), clock=lambda: NOW)
        insights = service.insights("t", "p0")
        assert insights.cluster is not None and insights.cluster.cluster_id == cid
        assert cid in insights.cluster.reason.en and "Кластер" in insights.cluster.reason.ru
        assert [s.segment_id for s in insights.segments] == ["night_owls"]
        assert service.insights("t", "p1").segments == []
        assert template_variables(insights)["cluster"] == cid
        service.forget("t", ["p0"])
        assert "p0" not in PopulationFiles(tmp_path).load("t").clusters["members"]  # type: ignore[union-attr]
    finally:
        stores.close()
