"""Text insights of catalogue items: language, sentiment, emotion and keywords of the title and
description, topics in the tenant's categories learnt from its labelled items, the cache keyed by
the text, and the segment fields of the items a person touched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from personify.domain.events import Event
from personify.domain.items import Item
from personify.insights.item_text import CHECK_EVERY, ItemTexts
from personify.insights.population import PopulationFiles
from personify.insights.rules import evaluate, parse_text
from personify.insights.segments import SegmentFiles, SegmentIn, SegmentTracker
from personify.insights.service import InsightsService
from personify.insights.text import default_analyzer
from personify.storage.registry import Stores, open_stores
from personify.testing.clocks import ManualClock

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TEA = ["Green tea leaves from Yunnan", "Black tea, strong breakfast blend",
       "Oolong tea with a honey aroma", "Jasmine green tea pearls"]
KETTLES = ["Electric kettle, steel, 1.7 litres", "Glass kettle with a blue light",
           "Stovetop kettle that whistles", "Cordless kettle, fast boil"]


@pytest.fixture
def stores() -> Iterator[Stores]:
    stores = open_stores("memory://")
    labelled = [Item(item_id=f"tea{k}", title=t, categories=["tea"]) for k, t in enumerate(TEA)]
    labelled += [Item(item_id=f"kettle{k}", title=t, categories=["kettles"])
                 for k, t in enumerate(KETTLES)]
    stores.catalog.upsert("t", [
        *labelled,
        Item(item_id="new-tea", title="Smoky lapsang tea, loose leaves"),
        Item(item_id="sad", title="Ужасная сковорода",
             description="Ужасно разочарован: сковорода сломалась через день, всё пригорает."),
        Item(item_id="blank"),
    ])
    yield stores
    stores.close()


def test_item_text_insights(stores: Stores) -> None:
    texts = ItemTexts(stores.catalog, default_analyzer(), ManualClock(NOW))
    new = texts.of("t", stores.catalog.get("t", "new-tea"))  # type: ignore[arg-type]
    assert new.status == "ok" and new.language == "en"
    assert new.topics[0].label == "tea"  # learnt from the labelled items: it has no category
    assert "lapsang" in new.keywords and "tea" in new.reason.en
    sad = texts.of("t", stores.catalog.get("t", "sad"))  # type: ignore[arg-type]
    assert sad.language == "ru" and sad.sentiment == "negative"
    assert sad.emotion in {"sadness", "anger"} and "сковорода" in sad.keywords
    assert sad.reason.ru.startswith("Текст (ru)")
    blank = texts.of("t", stores.catalog.get("t", "blank"))  # type: ignore[arg-type]
    assert blank.status == "no_text" and not blank.topics and blank.reason.en


def test_edited_text_and_new_labels_are_seen(stores: Stores) -> None:
    clock = ManualClock(NOW)
    texts = ItemTexts(stores.catalog, default_analyzer(), clock)
    first = texts.of("t", stores.catalog.get("t", "new-tea"))  # type: ignore[arg-type]
    assert texts.of("t", stores.catalog.get("t", "new-tea")) is first  # type: ignore[arg-type]
    edited = Item(item_id="new-tea", title="Cordless kettle with a steel base")
    stores.catalog.upsert("t", [edited])
    assert texts.of("t", edited).topics[0].label == "kettles"
    # a new category is learnt once the catalogue changed and the check is due
    stores.catalog.upsert("t", [Item(item_id=f"mug{k}", title=f"Ceramic mug, {c}",
                                     categories=["mugs"]) for k, c in enumerate(
                                         ["white", "blue", "large", "small"])])
    mug = Item(item_id="mug-x", title="Ceramic mug, green")
    stores.catalog.upsert("t", [mug])
    assert "mugs" not in {t.label for t in texts.of("t", mug).topics}
    clock.now = NOW + CHECK_EVERY + timedelta(seconds=1)
    assert texts.of("t", mug).topics[0].label == "mugs"


def test_item_text_fields_in_segments(stores: Stores, tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    stores.events.append("t", [
        Event(event_id="v1", type="view", user_id="ann", item_id="new-tea",
              timestamp=NOW - timedelta(days=1)),
        Event(event_id="p1", type="purchase", user_id="ann", item_id="sad", price=10.0,
              timestamp=NOW - timedelta(days=2)),
        Event(event_id="v2", type="view", user_id="bob", item_id="kettle1",
              timestamp=NOW - timedelta(days=1)),
    ])
    files = SegmentFiles(root, lambda: NOW)
    files.put("t", "tea_people", SegmentIn(text='item_topics has "tea"'))
    files.put("t", "let_down", SegmentIn(text='item_emotions has "sadness" or '
                                               'item_emotions has "anger"'))
    service = InsightsService(events=stores.events, users=stores.users, catalog=stores.catalog,
                              populations=PopulationFiles(root), may_profile=lambda t, u: True,
                              tracker=SegmentTracker(files, lambda: NOW), clock=lambda: NOW)
    assert {m.segment_id for m in service.insights("t", "ann").segments} == {
        "tea_people", "let_down"}
    assert service.insights("t", "bob").segments == []
    facts = service._current("t", "ann", NOW)[1]
    assert "lapsang" in facts["item_keywords"]
    assert evaluate(parse_text('item_keywords has "lapsang"'), facts, lambda s: False)
    assert service.item_insights("t", "sad").sentiment == "negative"
    from personify.domain.errors import NotFound

    with pytest.raises(NotFound) as missing:
        service.item_insights("t", "nope")
    assert missing.value.field == "item_id"
