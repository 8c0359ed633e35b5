"""Topics of a text in the tenant's own labels (categories, tags), learnt from labelled texts
(the catalogue's items: title and description -> categories), NumPy only.

A text is the hashed word / character n-gram vector of :mod:`personify.insights.text` with
IDF weights of the labelled corpus, L2-normalised. A label's score blends two cosine views:
its centroid (Rocchio: the normalised mean of its texts' vectors) and its share of the ``k``
most similar labelled texts (similarity-weighted votes). Fitting is a pass over the corpus
(milliseconds for thousands of texts), so a tenant's model is fitted when asked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from personify.insights.text import clean, hashed_text, idf_weights, stack_rows

BUCKETS = 1 << 18
NEIGHBOURS = 10
CENTROID_WEIGHT = 0.5
"""Share of the centroid view in a label's score (the rest: the neighbours' votes)."""


@dataclass(frozen=True)
class Topic:
    label: str
    score: float


def _rows(texts: Sequence[str], buckets: int) -> sparse.csr_matrix:
    return stack_rows([hashed_text(clean(text), buckets, cleaned=True) for text in texts],
                      buckets)


def _normalise(m: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ m)


class TopicModel:
    """Labels of texts from labelled examples (see the module doc)."""

    def __init__(self, idf: np.ndarray, docs: sparse.csr_matrix, labels: list[list[str]],
                 names: list[str], centroids: sparse.csr_matrix, *, buckets: int,
                 neighbours: int, centroid_weight: float) -> None:
        self.idf = idf
        self.docs = docs
        self.labels = labels
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        self.centroids = centroids
        self.buckets = buckets
        self.neighbours = neighbours
        self.centroid_weight = centroid_weight

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[Sequence[str]], *,
            buckets: int = BUCKETS, neighbours: int = NEIGHBOURS,
            centroid_weight: float = CENTROID_WEIGHT) -> TopicModel:
        """``labels[i]``: the labels of ``texts[i]`` (texts without labels are left out)."""
        pairs = [(t, sorted(set(ls))) for t, ls in zip(texts, labels, strict=True) if ls]
        if not pairs:
            raise ValueError("no labelled texts to learn topics from")
        raw = _rows([t for t, _ in pairs], buckets)
        idf = idf_weights(raw, buckets)
        docs = _normalise(sparse.csr_matrix(raw @ sparse.diags(idf)))
        names = sorted({label for _, ls in pairs for label in ls})
        index = {n: i for i, n in enumerate(names)}
        members: dict[int, list[int]] = defaultdict(list)
        for row, (_, ls) in enumerate(pairs):
            for label in ls:
                members[index[label]].append(row)
        assign = sparse.csr_matrix(
            (np.ones(sum(len(v) for v in members.values()), np.float32),
             (np.concatenate([[k] * len(v) for k, v in sorted(members.items())]),
              np.concatenate([v for _, v in sorted(members.items())]))),
            shape=(len(names), len(pairs)))
        centroids = _normalise(sparse.csr_matrix(assign @ docs))
        return cls(idf, docs, [ls for _, ls in pairs], names, centroids, buckets=buckets,
                   neighbours=neighbours, centroid_weight=centroid_weight)

    def _terms(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's bucket indices and their L2-normalised TF-IDF weights."""
        idx, tf = hashed_text(clean(text), self.buckets, cleaned=True)
        values = (tf * self.idf[idx]).astype(np.float32)
        norm = float(np.sqrt(np.dot(values, values)))
        return idx, (values / norm if norm > 0 else values)

    def vector(self, text: str) -> sparse.csr_matrix:
        idx, values = self._terms(text)
        return sparse.csr_matrix((values, idx, np.array([0, len(idx)])),
                                 shape=(1, self.buckets), dtype=np.float32)

    def _columns(self) -> tuple[sparse.csc_matrix, sparse.csc_matrix]:
        """Centroids and documents by column: a text's scores read only its buckets' columns
        (a product with the whole matrices read every stored value: 40x slower)."""
        found = getattr(self, "_csc", None)
        if found is None:
            found = self._csc = (self.centroids.tocsc(), self.docs.tocsc())
        return found

    def scores(self, text: str) -> np.ndarray:
        """One score per label (``names`` order)."""
        idx, values = self._terms(text)
        centroids, docs = self._columns()
        centroid = np.asarray(centroids[:, idx] @ values).ravel()
        sims = np.asarray(docs[:, idx] @ values).ravel()
        votes = np.zeros(len(self.names), np.float32)
        k = min(self.neighbours, len(sims))
        if k:
            for row in np.argpartition(-sims, k - 1)[:k]:
                for label in self.labels[row]:
                    votes[self.index[label]] += max(float(sims[row]), 0.0)
            total = votes.sum()
            if total > 0:
                votes /= total
        return np.asarray(self.centroid_weight * centroid + (1 - self.centroid_weight) * votes)

    def predict(self, text: str, n: int = 3) -> list[Topic]:
        """The ``n`` best labels of ``text``, best first."""
        s = self.scores(text)
        order = np.argsort(-s, kind="stable")[:n]
        return [Topic(self.names[i], round(float(s[i]), 4)) for i in order if s[i] > 0]
