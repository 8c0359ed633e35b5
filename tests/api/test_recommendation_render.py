"""The hot-path serializer of recommendation responses gives exactly the documented shape."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from personify.api.routers.recommendations import (
    RecommendationsOut,
    RecommendedItemOut,
    render,
)
from personify.domain.items import Item
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationResult, RecommendedItem


def _result(catalog: CatalogSnapshot) -> RecommendationResult:
    items = [
        RecommendedItem(
            item_id,
            score,
            "collaborative",
            [{"code": "because_you_viewed", "source": "collaborative", "weight": 0.5,
              "item_id": "a", "title": "Ä \"quoted\""}],
            "Because you viewed Ä",
            catalog.get(item_id),
        )
        for item_id, score in (("a", 1.25), ("b", 0.1 + 0.2), ("gone", 0.0))
    ]
    return RecommendationResult("rec1", items, True, "v1", ["collaborative"], ["a warning"])


def _reference(result: RecommendationResult, include_items: bool) -> dict[str, object]:
    """The document as FastAPI would produce it through the response model."""
    return RecommendationsOut(
        recommendation_id=result.recommendation_id,
        personalized=result.personalized,
        model_version=result.model_version,
        sources=result.sources,
        warnings=result.warnings,
        items=[
            RecommendedItemOut(item_id=i.item_id, score=i.score, source=i.source,
                               explanation=i.explanation, reasons=i.reasons,
                               item=i.item if include_items else None)
            for i in result.items
        ],
    ).model_dump(mode="json")


def test_render_equals_the_response_model() -> None:
    catalog = CatalogSnapshot(
        [
            Item(item_id="a", title="Ä", categories=["x"], price=9.5,
                 created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                 properties={"colour": "red", "sizes": [1, 2]}),
            Item(item_id="b", type="content", tags=["t"]),
        ]
    )
    result = _result(catalog)
    for include in (True, False):
        expected = _reference(result, include)
        assert orjson.loads(render(result, catalog, include_items=include).body) == expected


def test_render_follows_catalogue_updates() -> None:
    catalog = CatalogSnapshot([Item(item_id="a", title="old")])
    first = orjson.loads(render(_result(catalog), catalog).body)
    assert first["items"][0]["item"]["title"] == "old"
    catalog.upsert([Item(item_id="a", title="new")])
    again = orjson.loads(render(_result(catalog), catalog).body)
    assert again["items"][0]["item"]["title"] == "new"
    assert again["items"][2]["item"] is None
