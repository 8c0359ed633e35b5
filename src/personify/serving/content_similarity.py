"""Similar items from the catalogue's own content, for items the trained model does not know yet
(added since the last training, or never interacted with): the items sharing its categories and
tags, ranked by the overlap of those labels and of the words of its title and description. Read
from the live catalogue snapshot, so a new item has similar items the moment it is added."""

from __future__ import annotations

import math
from functools import lru_cache

from personify.data.text import tokenize
from personify.domain.items import Item
from personify.serving.catalog import CatalogSnapshot

PER_LABEL = 2000
"""Candidates read per shared label (labels can hold a large share of the catalogue)."""


@lru_cache(maxsize=65_536)
def _words(text: str) -> frozenset[str]:
    return frozenset(tokenize(text, stem="suffix"))


def _labels(item: Item) -> frozenset[str]:
    return frozenset(label.lower() for label in (*item.categories, *item.tags))


def content_neighbours(catalog: CatalogSnapshot, item_id: str, n: int) -> list[tuple[str, float]]:
    """Up to ``n`` items most like ``item_id`` by labels (half the score) and words (half),
    each a cosine of sets; items sharing no label are not considered."""
    item = catalog.get(item_id)
    if item is None:
        return []
    labels = _labels(item)
    words = _words(f"{item.title} {item.description}")
    candidates: set[str] = set()
    for label in labels:
        candidates.update(catalog.with_label(label)[:PER_LABEL])
    candidates.discard(item_id)
    scored = []
    for other_id in candidates:
        other = catalog.get(other_id)
        if other is None:
            continue
        their_labels = _labels(other)
        score = 0.5 * len(labels & their_labels) / math.sqrt(len(labels) * len(their_labels))
        if words:
            theirs = _words(f"{other.title} {other.description}")
            if theirs:
                score += 0.5 * len(words & theirs) / math.sqrt(len(words) * len(theirs))
        scored.append((other_id, score))
    scored.sort(key=lambda kv: (-kv[1], kv[0]))
    return scored[:n]
