"""The behavioural profile from hand-made histories (fixed clock: passes at any hour)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import Profile, User
from personify.insights.population import Population, PopulationFiles, fit_population
from personify.insights.profile import behaviour_profile, rf_tier

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
ITEMS = {
    "shoe": Item(item_id="shoe", categories=["shoes"], tags=["running"], price=100.0,
                 properties={"brand": "Acme"}),
    "sock": Item(item_id="sock", categories=["socks"], price=10.0),
    "hat": Item(item_id="hat", categories=["hats"], price=40.0),
}
_ids = iter(range(10**6))


def ev(type: str, days_ago: float, item: str | None = "shoe", **fields: Any) -> Event:
    return Event(event_id=f"e{next(_ids)}", type=type, user_id=fields.pop("user_id", "u1"),
                 item_id=item, timestamp=NOW - timedelta(days=days_ago), **fields)


def population(**fields: Any) -> Population:
    base: dict[str, Any] = {
        "tenant": "t", "fitted_at": NOW, "as_of": NOW, "customers": 100,
        "rfm_edges": {"recency": [10, 30, 60, 120], "frequency": [1, 2, 3, 5],
                      "monetary": [50, 100, 200, 500]},
        "category_price": {"shoes": 100.0, "socks": 10.0}, "price_edges": [10.0, 40.0, 90.0],
    }
    base.update(fields)
    return Population(**base)


def test_recent_interest_outweighs_older_evidence() -> None:
    events = [ev("view", 200, "sock") for _ in range(4)] + [ev("view", 1, "shoe")]
    profile = behaviour_profile(events, ITEMS, None, population(), NOW)
    cats = profile.affinities.categories
    assert [a.key for a in cats] == ["shoes", "socks"]
    assert cats[0].evidence == 1 and cats[1].evidence == 4 and cats[1].score < 0.05
    assert profile.affinities.brands[0].key == "Acme"
    assert profile.affinities.price_bands[0].key == "premium"
    assert "shoes" in profile.affinities.reason.en and "shoes" in profile.affinities.reason.ru


def test_rhythm_is_in_the_persons_time_zone() -> None:
    # 18:30 UTC on a Monday is 21:30 in Moscow (UTC+3)
    at = datetime(2026, 2, 23, 18, 30, tzinfo=UTC)
    events = [Event(event_id=f"r{i}", type="view", user_id="u1", item_id="shoe", timestamp=at,
                    context={"channel": "app", "device": "ios"}) for i in range(3)]
    moscow = User(user_id="u1", profile=Profile(time_zone="Europe/Moscow"))
    profile = behaviour_profile(events, ITEMS, moscow, None, NOW)
    assert profile.rhythm.hour_of_week[21] == 3 and sum(profile.rhythm.hour_of_week) == 3
    assert profile.rhythm.time_zone == "Europe/Moscow" and profile.rhythm.peak_weekday == 0
    assert profile.rhythm.preferred_channel == "app" and profile.rhythm.preferred_device == "ios"
    utc = behaviour_profile(events, ITEMS, None, None, NOW)
    assert utc.rhythm.hour_of_week[18] == 3


@pytest.mark.parametrize(
    ("days", "stage"),
    [
        ([3], "new"),
        ([200, 170, 140, 110, 80, 50, 20], "active"),
        ([300, 270, 240, 210, 180, 150, 100], "at_risk"),
        ([400, 380, 360, 340, 320, 300], "lapsed"),
        ([400, 380, 360, 5], "returning"),
    ],
)
def test_lifecycle_stages(days: list[int], stage: str) -> None:
    events = [ev("purchase", d, price=100.0) for d in days]
    profile = behaviour_profile(events, ITEMS, None, population(), NOW)
    assert profile.lifecycle.stage == stage, profile.lifecycle.reason.en


def test_rfm_scores_and_tier() -> None:
    events = [ev("purchase", d, price=100.0, quantity=2) for d in (40, 20, 8, 5, 2, 1)]
    rfm = behaviour_profile(events, ITEMS, None, population(), NOW).rfm
    assert (rfm.recency_days, rfm.frequency, rfm.monetary) == (1.0, 6, 1200.0)
    assert (rfm.r, rfm.f, rfm.m, rfm.tier) == (5, 5, 5, "champions")
    assert rf_tier(1, 1)[0] == "hibernating" and rf_tier(1, 5)[0] == "cannot_lose"
    none = behaviour_profile([ev("view", 1)], ITEMS, None, population(), NOW).rfm
    assert none.r is None and "No purchases" in none.reason.en
    unfitted = behaviour_profile(events, ITEMS, None, None, NOW).rfm
    assert unfitted.r is None and "insights fit" in unfitted.reason.en


def test_price_sensitivity() -> None:
    cheap = [ev("purchase", 3, "shoe", price=60.0), ev("purchase", 2, "shoe", price=70.0),
             ev("purchase", 1, "sock", price=10.0, properties={"discount": True})]
    sens = behaviour_profile(cheap, ITEMS, None, population(), NOW).price_sensitivity
    assert sens.discount_share == 1.0 and sens.label == "bargain_hunter"
    full = [ev("purchase", 2, "shoe", price=150.0), ev("purchase", 1, "shoe", price=140.0)]
    sens = behaviour_profile(full, ITEMS, None, population(), NOW).price_sensitivity
    assert sens.discount_share == 0.0 and sens.relative_price == 1.45 and sens.label == "premium"


def test_population_fit_and_files(tmp_path: Any) -> None:
    events = []
    for c in range(60):
        for k in range(c % 5 + 1):
            events.append(ev("purchase", 300 - 40 * k - c, "shoe", user_id=f"c{c}",
                             price=20.0 + c))
    fitted = fit_population("t", events, ITEMS.values(), as_of=NOW)
    assert fitted.customers == 60 and fitted.bgnbd is not None
    assert fitted.gamma_gamma is not None and len(fitted.rfm_edges["recency"]) == 4
    assert fitted.typical_gap_days == 40.0 and fitted.category_price["shoes"] == 100.0
    files = PopulationFiles(tmp_path)
    files.save(fitted)
    loaded = files.load("t")
    assert loaded is not None and loaded.bgnbd == fitted.bgnbd
    assert files.load("other") is None
