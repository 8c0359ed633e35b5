"""Diversity: at most N items per category, and an MMR trade-off between relevance and variety."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def category_similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """Jaccard similarity of two category lists (0 when either is empty)."""
    if not a or not b:
        return 0.0
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb)


def diversify(
    ranked: Sequence[T],
    n: int,
    *,
    score: Callable[[T], float],
    categories: Callable[[T], Sequence[str]],
    max_per_category: int | None = None,
    mmr_lambda: float = 1.0,
    similarity: Callable[[T, T], float] | None = None,
) -> list[T]:
    """Pick ``n`` of ``ranked`` (best first) honouring the per-category cap and MMR.

    MMR: next = argmax lambda * relevance - (1 - lambda) * max similarity to those picked, with
    relevance min-max normalised over the candidates. ``mmr_lambda = 1`` keeps the order.
    """
    if not ranked:
        return []
    sim = similarity or (lambda x, y: category_similarity(categories(x), categories(y)))
    scores = [score(c) for c in ranked]
    lo, hi = min(scores), max(scores)
    span = (hi - lo) or 1.0
    relevance = [(s - lo) / span for s in scores]
    counts: dict[str, int] = {}
    picked: list[T] = []
    remaining = list(range(len(ranked)))

    def allowed(idx: int) -> bool:
        if max_per_category is None:
            return True
        return all(counts.get(c, 0) < max_per_category for c in categories(ranked[idx]))

    while remaining and len(picked) < n:
        best_idx, best_value = -1, float("-inf")
        for idx in remaining:
            if not allowed(idx):
                continue
            if mmr_lambda >= 1.0 or not picked:
                value = relevance[idx]
                if best_idx < 0:
                    best_idx, best_value = idx, value
                    if mmr_lambda >= 1.0:
                        break
            else:
                redundancy = max(sim(ranked[idx], p) for p in picked)
                value = mmr_lambda * relevance[idx] - (1 - mmr_lambda) * redundancy
            if value > best_value:
                best_idx, best_value = idx, value
        if best_idx < 0:
            break
        remaining.remove(best_idx)
        chosen = ranked[best_idx]
        picked.append(chosen)
        for c in categories(chosen):
            counts[c] = counts.get(c, 0) + 1
    return picked
