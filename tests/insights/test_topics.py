"""Topics in the tenant's own labels, learnt from labelled texts (NumPy only)."""

from __future__ import annotations

import pytest

from personify.insights.topics import TopicModel

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
