"""TF-IDF content model: profiles, declared interests, new items, similar items, the contract."""

from __future__ import annotations

import numpy as np
import pytest
from _planted_text import planted_split_with_text

from personify.algorithms.base import Recommender
from personify.algorithms.content import ContentModel, EmbeddingEncoder
from personify.data.interactions import Interactions
from personify.data.splits import Split
from personify.domain.errors import InvalidInput, Unavailable
from personify.testing.algorithm_contracts import RecommenderContract


def catalogue() -> Interactions:
    data = Interactions.from_arrays(
        ["anna", "anna", "boris", "boris", "vera"],
        ["candle1", "candle2", "mug1", "mug2", "candle1"],
        timestamps=[1.0, 2.0, 3.0, 4.0, 5.0],
    )
    titles = {
        "candle1": "Красная свеча", "candle2": "Ароматические свечи", "mug1": "Blue coffee mug",
        "mug2": "Coffee mugs set",
    }
    data.item_features["title"] = [titles[i] for i in data.items.ids]
    data.item_features["categories"] = [["свечи"] if "candle" in i else ["kitchen"]
                                        for i in data.items.ids]
    return data


def with_extra_items(data: Interactions, extra: dict[str, str]) -> Interactions:
    """The same log over a catalogue with further (never interacted) items."""
    from personify.data.vocabulary import Vocabulary

    items = Vocabulary([*data.items.ids, *extra])
    out = Interactions.from_arrays(data.users.lookup(data.user_idx), data.items.lookup(
        data.item_idx), users=data.users, items=items)
    titles = dict(zip(data.items.ids, data.item_features["title"], strict=True)) | extra
    out.item_features["title"] = [titles[i] for i in items.ids]
    return out


def test_profile_ranks_unseen_items_of_the_same_topic_first() -> None:
    data = with_extra_items(catalogue(), {"candle3": "Свеча в стакане", "mug3": "Большая mug"})
    model = ContentModel().fit(data)
    ids, _ = model.recommend([data.users.index("anna")], 2, exclude=data.matrix)
    assert data.items.lookup(ids[0])[0] == "candle3"  # inflected "свеча" matches "свечи"
    ids, _ = model.recommend([data.users.index("boris")], 1, exclude=data.matrix)
    assert data.items.lookup(ids[0]) == ["mug3"]


def test_declared_interests_drive_new_users_and_fitted_users() -> None:
    data = with_extra_items(catalogue(), {"tea": "Зелёный чай", "pot": "Чайник для чая"})
    model = ContentModel()
    ids, scores = model.fit(data).recommend_for_profile("люблю чай", 2)
    assert set(data.items.lookup(ids)) == {"tea", "pot"} and np.all(scores > 0)
    data.user_features["interests"] = [["чай"], [], []]
    ids, _ = ContentModel().fit(data).recommend([data.users.index("anna")], 1,
                                                  exclude=data.matrix)
    assert data.items.lookup(ids[0]) in (["tea"], ["pot"])


def test_first_clicks_and_new_item_vectors() -> None:
    data = catalogue()
    model = ContentModel().fit(data)
    ids, _ = model.recommend_for_profile("", 1, history_items=[data.items.index("mug1")])
    assert data.items.lookup(ids) == ["mug2"]
    vec = model.item_vectors_for({"title": ["Ароматическая свеча"]})
    sims = (vec @ model.item_vectors_.T).toarray()[0]
    assert data.items.ids[int(np.argmax(sims))].startswith("candle")


def test_similar_items_by_text() -> None:
    data = catalogue()
    ids, scores = ContentModel().fit(data).similar_items([data.items.index("mug1")], 3)
    assert data.items.lookup(ids[0][:1]) == ["mug2"]
    assert ids[0][-1] == -1 and np.isneginf(scores[0][-1])  # nothing else shares words


def test_without_text_the_error_names_the_field() -> None:
    data = Interactions.from_arrays(["u"], ["i"])
    with pytest.raises(InvalidInput) as err:
        ContentModel().fit(data)
    assert err.value.field == "item_features"


def test_embedding_encoder_never_downloads(tmp_path: object) -> None:
    with pytest.raises(Unavailable) as err:
        EmbeddingEncoder("/nonexistent/model").encode(["hello"])
    assert err.value.field == "model_path"


class TestContentContract(RecommenderContract):
    min_lift = 1.5

    def make_model(self) -> Recommender:
        return ContentModel()

    @pytest.fixture(scope="class")
    @classmethod
    def split(cls) -> Split:
        return planted_split_with_text()
