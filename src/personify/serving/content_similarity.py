"""Similar items from the catalogue's own content, for items the trained model does not know yet
(added since the last training, or never interacted with): the items sharing its categories and
tags, ranked by the overlap of those labels and of the words of its title and description. Read
from the live catalogue snapshot, so a new item has similar items the moment it is added."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Container, Sequence
from functools import lru_cache

from personify.data.text import tokenize
from personify.domain.items import Item
from personify.serving.catalog import CatalogSnapshot
from personify.serving.explanations import Reason
from personify.serving.sources import RequestScope, Scored

PER_LABEL = 2000
"""Candidates read per shared label (labels can hold a large share of the catalogue)."""


@lru_cache(maxsize=65_536)
def _words(text: str) -> frozenset[str]:
    return frozenset(tokenize(text, stem="suffix"))


def _labels(item: Item) -> frozenset[str]:
    return frozenset(label.lower() for label in (*item.categories, *item.tags))


def content_neighbours(
    catalog: CatalogSnapshot,
    item_id: str,
    n: int,
    *,
    with_label: Callable[[str], Sequence[str]] | None = None,
) -> list[tuple[str, float]]:
    """Up to ``n`` items most like ``item_id`` by labels (half the score) and words (half),
    each a cosine of sets; items sharing no label are not considered. ``with_label`` narrows
    the items considered per label (default: every visible item with it)."""
    item = catalog.get(item_id)
    if item is None:
        return []
    labels = _labels(item)
    words = _words(f"{item.title} {item.description}")
    members = with_label or catalog.with_label
    candidates: set[str] = set()
    for label in labels:
        candidates.update(members(label)[:PER_LABEL])
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


COLD_ANCHORS = 3
"""The person's newest distinct items whose content neighbours the ``cold_content`` source
asks."""
COLD_POOL = 500
"""Content neighbours read per anchor before the ones the model knows are left out (most of a
trained shop's catalogue is known)."""


class _ColdLabels:
    """The visible items of a label that the model does not know, per label on first use, for
    one catalogue version and one model (a trained shop's labels hold few or none: the cold
    source then scores nothing instead of every label-mate)."""

    def __init__(self, catalog: CatalogSnapshot, known: Container[str] | None) -> None:
        self.catalog = catalog
        self.version = catalog.version
        self.known = known
        self._labels: dict[str, list[str]] = {}

    def fits(self, catalog: CatalogSnapshot, known: Container[str] | None) -> bool:
        return catalog is self.catalog and catalog.version == self.version and known is self.known

    def __call__(self, label: str) -> list[str]:
        found = self._labels.get(label)
        if found is None:
            known = self.known
            found = [i for i in self.catalog.with_label(label)
                     if known is None or i not in known]
            self._labels[label] = found
        return found


class ColdContentSource:
    """Cold start in the served chain: items the trained model does not know yet (added since
    the last training, never interacted with) that are like the person's newest items by their
    catalogue content (labels and words of title and description). A new item reaches people
    the moment it is added; once a training knows it, the collaborative sources take over.

    Only the cold items are scored: each label's cold members are found once per catalogue
    version and model (:class:`_ColdLabels`), not filtered out after scoring every label-mate."""

    name = "cold_content"
    personal = True

    def __init__(self) -> None:
        self._cold: dict[int, _ColdLabels] = {}
        self._lock = threading.Lock()

    def _cold_labels(self, catalog: CatalogSnapshot,
                     known: Container[str] | None) -> _ColdLabels:
        with self._lock:
            found = self._cold.get(id(catalog))
            if found is None or not found.fits(catalog, known):
                found = _ColdLabels(catalog, known)
                self._cold[id(catalog)] = found
                if len(self._cold) > 64:  # catalogues of tenants no longer served
                    del self._cold[next(iter(self._cold))]
            return found

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        state = scope.user_state
        if state is None or not state.recent:
            return []
        known = scope.bundle.items if scope.bundle is not None else None
        cold = self._cold_labels(scope.catalog, known)
        anchors = list(dict.fromkeys(i.item_id for i in state.recent))[:COLD_ANCHORS]
        best: dict[str, Scored] = {}
        for rank, anchor in enumerate(anchors):
            item = scope.catalog.get(anchor)
            title = item.title if item is not None and item.title else anchor
            for other, score in content_neighbours(scope.catalog, anchor, max(COLD_POOL, n),
                                                   with_label=cold):
                if other in state.seen:
                    continue  # already the person's
                value = score / (1 + rank)
                if other not in best or best[other].score < value:
                    best[other] = Scored(other, value, Reason(
                        "similar_to", self.name, value, {"item_id": anchor, "title": title}))
        return sorted(best.values(), key=lambda s: (-s.score, s.item_id))[:n]
