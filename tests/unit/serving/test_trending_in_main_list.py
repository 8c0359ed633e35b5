"""Trending per context segment reaches the main list (the default sources, not only
``sources: ["trending"]``), also when the trained blend weighed ``trending`` at 0 (it learned
from the global ranking, its validation log having no request context): a request from a
place or a device keeps trending's default weight, so what is popular there comes first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_chain import NOW, T, service  # noqa: F401  (the shared fixture)

from personify.domain.events import Event
from personify.serving.chain import RecommendationService
from personify.serving.request import RecommendationRequest


def _crowd(svc: RecommendationService, state: object) -> None:
    """i7 is the rage in Berlin today, i3 (more views) in Paris."""
    events = [Event.model_validate({
        "event_id": f"b{k}", "type": "view", "anonymous_id": f"berliner{k}", "item_id": "i7",
        "timestamp": NOW - timedelta(minutes=k),
        "context": {"location": {"country": "DE", "city": "Berlin"}}}) for k in range(6)]
    events += [Event.model_validate({
        "event_id": f"p{k}", "type": "view", "anonymous_id": f"parisian{k}", "item_id": "i3",
        "timestamp": NOW - timedelta(minutes=k),
        "context": {"location": {"country": "FR", "city": "Paris"}}}) for k in range(10)]
    state.apply(T, events, now=NOW)  # type: ignore[attr-defined]


def _main_list(svc: RecommendationService, **context: object) -> list[tuple[str, str]]:
    request = RecommendationRequest.model_validate({
        "anonymous_id": "visitor", "n": 5, "explain": True, "context": context,
        "repetition": {"penalty": 1}})
    return [(i.item_id, i.explanation) for i in svc.recommend(T, request).items]


@pytest.mark.parametrize("learned", [None, 0.0, 0.02])
def test_what_is_popular_here_leads_the_main_list(service, learned: float | None  # noqa: F811
                                                  ) -> None:
    svc, state, _ = service
    bundle = svc.bundles(T)
    assert bundle is not None
    if learned is None:
        bundle.source_weights.pop("trending", None)
    else:
        bundle.source_weights["trending"] = learned
    _crowd(svc, state)
    here = _main_list(svc, location={"country": "DE", "city": "Berlin"})
    assert here[0] == ("i7", "Popular in Berlin this week"), here
    elsewhere = _main_list(svc, location={"country": "FR", "city": "Paris"})
    assert elsewhere[0] == ("i3", "Popular in Paris this week"), elsewhere
    if learned == 0.0:  # no place: the learned weight stands (trending adds nothing)
        assert "i7" not in [i for i, _ in _main_list(svc)[:1]]
