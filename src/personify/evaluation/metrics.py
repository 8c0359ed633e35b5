"""Full-ranking top-N metrics and beyond-accuracy metrics: pure, vectorised functions.

Accuracy metrics take ``hits``, a boolean ``(n_users, K)`` matrix (``hits[u, r]`` is True when
the item ranked ``r`` for user ``u`` is one of their test items) and ``n_relevant`` (the number of
test items per user). Definitions follow the NGCF / LightGCN / BARS protocol: Recall@K is
hits / |test items| (not divided by min(|test|, K)); NDCG uses binary relevance and the ideal DCG
over ``min(|test|, K)`` positions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def hit_matrix(ranked: NDArray[np.int64], relevant: sp.csr_matrix) -> NDArray[np.bool_]:
    """``hits[u, r]``: is ``ranked[u, r]`` a non-zero of row ``u`` of ``relevant``?

    ``ranked`` rows align with ``relevant`` rows; ``-1`` (padding) never hits.
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    n_cols = relevant.shape[1]
    coo = relevant.tocoo()
    keys = np.sort(coo.row.astype(np.int64) * n_cols + coo.col.astype(np.int64))
    rows = np.arange(ranked.shape[0], dtype=np.int64)[:, None]
    query = rows * n_cols + np.where(ranked >= 0, ranked, 0)
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, max(len(keys) - 1, 0))
    found = keys[pos] == query if len(keys) else np.zeros(ranked.shape, dtype=bool)
    return np.asarray(found & (ranked >= 0), dtype=bool)


def _check(hits: NDArray[np.bool_], k: int) -> NDArray[np.bool_]:
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    return np.asarray(hits[:, :k], dtype=bool)


def recall(hits: NDArray[np.bool_], n_relevant: NDArray[Any], k: int) -> FloatArray:
    """Hits in the top ``k`` / number of relevant items (0 for users without relevant items)."""
    h = _check(hits, k).sum(axis=1)
    n = np.asarray(n_relevant, dtype=np.float64)
    return np.divide(h, n, out=np.zeros(len(n)), where=n > 0)


def precision(hits: NDArray[np.bool_], k: int) -> FloatArray:
    """Hits in the top ``k`` / ``k``."""
    return _check(hits, k).sum(axis=1) / float(k)


def _discounts(k: int) -> FloatArray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg(hits: NDArray[np.bool_], n_relevant: NDArray[Any], k: int) -> FloatArray:
    """Binary-relevance NDCG@k; the ideal DCG puts ``min(n_relevant, k)`` hits on top."""
    h = _check(hits, k)
    disc = _discounts(h.shape[1])
    dcg = (h * disc).sum(axis=1)
    ideal_cum = np.concatenate([[0.0], np.cumsum(_discounts(k))])
    idcg = ideal_cum[np.minimum(np.asarray(n_relevant, dtype=np.int64), k)]
    return np.divide(dcg, idcg, out=np.zeros(len(dcg)), where=idcg > 0)


def average_precision(hits: NDArray[np.bool_], n_relevant: NDArray[Any], k: int) -> FloatArray:
    """AP@k: mean of precision@r over the ranks r of hits, divided by ``min(n_relevant, k)``."""
    h = _check(hits, k)
    ranks = np.arange(1, h.shape[1] + 1, dtype=np.float64)
    prec_at = np.cumsum(h, axis=1) / ranks
    denom = np.minimum(np.asarray(n_relevant, dtype=np.float64), k)
    total = (prec_at * h).sum(axis=1)
    return np.divide(total, denom, out=np.zeros(len(total)), where=denom > 0)


def reciprocal_rank(hits: NDArray[np.bool_], k: int) -> FloatArray:
    """1 / rank of the first hit within the top ``k`` (0 without a hit)."""
    h = _check(hits, k)
    any_hit = h.any(axis=1)
    first = np.argmax(h, axis=1) + 1.0
    return np.asarray(np.where(any_hit, 1.0 / first, 0.0), dtype=np.float64)


def hit_rate(hits: NDArray[np.bool_], k: int) -> FloatArray:
    """1 when at least one relevant item is in the top ``k``."""
    return np.asarray(_check(hits, k).any(axis=1), dtype=np.float64)


# -- beyond accuracy --------------------------------------------------------------------------


def _item_counts(ranked: NDArray[np.int64], n_items: int) -> NDArray[np.int64]:
    flat = np.asarray(ranked, dtype=np.int64).ravel()
    return np.bincount(flat[flat >= 0], minlength=n_items)


def coverage(ranked: NDArray[np.int64], n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return float((_item_counts(ranked, n_items) > 0).sum() / max(n_items, 1))


def gini(ranked: NDArray[np.int64], n_items: int) -> float:
    """Gini index of how often each catalogue item is recommended (0 equal, 1 one item only)."""
    counts = np.sort(_item_counts(ranked, n_items)).astype(np.float64)
    total = counts.sum()
    if total == 0 or n_items == 0:
        return 0.0
    idx = np.arange(1, n_items + 1, dtype=np.float64)
    return float(((2 * idx - n_items - 1) * counts).sum() / (n_items * total))


def novelty(ranked: NDArray[np.int64], item_popularity: NDArray[Any], n_users: int) -> float:
    """Mean self-information ``-log2(pop_i / n_users)`` of recommended items (higher = rarer)."""
    ranked = np.asarray(ranked, dtype=np.int64)
    valid = ranked >= 0
    if not valid.any():
        return 0.0
    pop = np.asarray(item_popularity, dtype=np.float64)[ranked[valid]]
    prob = np.clip(pop / max(n_users, 1), 1.0 / max(n_users, 1), 1.0)
    return float(-np.log2(prob).mean())


def average_popularity(ranked: NDArray[np.int64], item_popularity: NDArray[Any]) -> float:
    """ARP: per list the mean training popularity of its items, averaged over lists."""
    ranked = np.asarray(ranked, dtype=np.int64)
    valid = ranked >= 0
    pop = np.where(valid, np.asarray(item_popularity, dtype=np.float64)[np.maximum(ranked, 0)], 0)
    n = valid.sum(axis=1)
    per_list = np.divide(pop.sum(axis=1), n, out=np.zeros(len(n)), where=n > 0)
    return float(per_list[n > 0].mean()) if (n > 0).any() else 0.0


def intra_list_diversity(
    ranked: NDArray[np.int64],
    *,
    item_vectors: NDArray[Any] | sp.spmatrix | None = None,
    similarity: sp.spmatrix | NDArray[Any] | None = None,
) -> float:
    """Mean pairwise dissimilarity (1 - similarity) inside each list, averaged over lists.

    Give ``item_vectors`` (rows = items, cosine similarity is used) or an item x item
    ``similarity`` matrix with values in [0, 1].
    """
    if (item_vectors is None) == (similarity is None):
        raise ValueError("give exactly one of item_vectors or similarity")
    ranked = np.asarray(ranked, dtype=np.int64)
    totals: list[float] = []
    if item_vectors is not None:
        vec = sp.csr_matrix(item_vectors, dtype=np.float64)
        norms = np.sqrt(np.asarray(vec.multiply(vec).sum(axis=1)).ravel())
        vec = sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ vec
    sim = None if similarity is None else sp.csr_matrix(similarity, dtype=np.float64)
    for row in ranked:
        items = row[row >= 0]
        m = len(items)
        if m < 2:
            continue
        if sim is not None:
            block = sim[items][:, items].toarray()
        else:
            sub = vec[items]
            block = (sub @ sub.T).toarray()
        off = block.sum() - np.trace(block)
        totals.append(1.0 - off / (m * (m - 1)))
    return float(np.mean(totals)) if totals else 0.0
