"""Topics in the tenant's own labels, learnt from labelled texts (NumPy only)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from personify.insights.topics import TopicModel, _normalise, _rows

TEXTS = [
    ("Running shoes with a light foam sole for marathon training", ["shoes", "running"]),
    ("Trail running shoes, waterproof, with a grippy sole", ["shoes", "running"]),
    ("Leather office shoes with a classic sole", ["shoes"]),
    ("Wool winter hat that keeps your ears warm", ["hats"]),
    ("A knitted beanie hat for cold winter mornings", ["hats"]),
    ("Summer straw hat with a wide brim against the sun", ["hats"]),
    ("Энергетический гель для бега на длинные дистанции", ["running", "nutrition"]),
    ("Протеиновый батончик с орехами", ["nutrition"]),
]


def test_learns_the_labels_of_similar_texts() -> None:
    model = TopicModel.fit([t for t, _ in TEXTS], [ls for _, ls in TEXTS])
    assert model.names == ["hats", "nutrition", "running", "shoes"]
    assert model.predict("a warm hat for winter", 1)[0].label == "hats"
    best = [t.label for t in model.predict("new shoes for my marathon running", 2)]
    assert set(best) == {"shoes", "running"}
    assert model.predict("батончик с орехами", 1)[0].label == "nutrition"
    scores = [t.score for t in model.predict("a warm hat", 4)]
    assert scores == sorted(scores, reverse=True)


def test_texts_without_labels_are_left_out_and_no_labels_is_refused() -> None:
    model = TopicModel.fit(["a hat", "no label here", ""], [["hats"], [], []])
    assert model.names == ["hats"] and len(model.labels) == 1
    assert model.predict("", 3) == []  # nothing in common: no topic rather than a guess
    with pytest.raises(ValueError, match="no labelled texts"):
        TopicModel.fit(["a", "b"], [[], []])


def test_scores_equal_the_whole_matrix_products() -> None:
    texts = ["green tea leaves", "black tea blend", "steel kettle", "glass kettle light",
             "tea and kettle set", "ceramic mug"]
    labels = [["tea"], ["tea"], ["kettles"], ["kettles"], ["tea", "kettles"], ["mugs"]]
    model = TopicModel.fit(texts, labels, neighbours=3)
    for text in ["smoky tea", "kettle for tea", "nothing known here", ""]:
        x = model.vector(text)
        whole = _normalise(sparse.csr_matrix(_rows([text], model.buckets)
                                             @ sparse.diags(model.idf)))
        assert np.allclose(x.toarray(), whole.toarray(), atol=1e-6)
        centroid = np.asarray((model.centroids @ x.T).todense()).ravel()
        sims = np.asarray((model.docs @ x.T).todense()).ravel()
        fast = model.scores(text)
        k = min(model.neighbours, len(sims))
        votes = np.zeros(len(model.names), np.float32)
        for row in np.argpartition(-sims, k - 1)[:k]:
            for label in model.labels[row]:
                votes[model.index[label]] += max(float(sims[row]), 0.0)
        if votes.sum() > 0:
            votes /= votes.sum()
        slow = model.centroid_weight * centroid + (1 - model.centroid_weight) * votes
        assert np.allclose(fast, slow, atol=1e-6), text
