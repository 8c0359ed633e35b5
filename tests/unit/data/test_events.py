"""Events -> weighted interactions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from personify.data.events import EventWeights, interactions_from_events
from personify.data.vocabulary import Vocabulary
from personify.domain.errors import ConfigurationError
from personify.domain.events import Event

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ev(n: int, kind: str, user: str | None, item: str | None, **kw: Any) -> Event:
    return Event(event_id=f"e{n}", type=kind, user_id=user, item_id=item,
                 timestamp=T0 + timedelta(minutes=n), **kw)


def test_default_weights_sum_per_user_item() -> None:
    events = [
        ev(1, "view", "u1", "a"),
        ev(2, "purchase", "u1", "a"),
        ev(3, "dislike", "u1", "b"),
        ev(4, "impression", "u1", "c"),  # not counted
        ev(5, "search", "u1", None, query="x"),  # no item
        ev(6, "click", None, "a", anonymous_id="v9"),
    ]
    data = interactions_from_events(events)
    assert data.users.ids == ["u1", "anon:v9"]
    assert data.items.ids == ["a", "b"]
    dense = data.matrix.toarray()
    np.testing.assert_allclose(dense, [[9.0, -4.0], [2.0, 0.0]])
    assert data.timestamps is not None and len(data.timestamps) == 4
    assert data.timestamps[0] == (T0 + timedelta(minutes=1)).timestamp()


def test_rating_is_value_based_and_configurable_weights() -> None:
    weights = EventWeights(weights={"view": 0.5}, rating_neutral=3.0, rating_scale=1.0)
    events = [ev(1, "rating", "u", "a", value=5.0), ev(2, "rating", "u", "b", value=1.0),
              ev(3, "view", "u", "c"), ev(4, "purchase", "u", "d")]
    data = interactions_from_events(events, weights)
    assert data.items.ids == ["a", "b", "c"]
    np.testing.assert_allclose(data.matrix.toarray(), [[2.0, -2.0, 0.5]])


def test_quantity_and_fixed_item_space() -> None:
    weights = EventWeights(use_quantity=True)
    items = Vocabulary(["x", "a"])
    events = [ev(1, "purchase", "u", "a", quantity=3.0), ev(2, "purchase", "u", "zzz")]
    data = interactions_from_events(events, weights, items=items)
    np.testing.assert_allclose(data.matrix.toarray(), [[0.0, 24.0]])


def test_non_finite_weight_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        EventWeights(weights={"view": float("nan")})
    assert info.value.field == "weights.view"
