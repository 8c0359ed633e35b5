"""Content-based recommendations: TF-IDF item text (Russian and English) matched to user profiles.

An item's vector is the weighted sum of the L2-normalised TF-IDF vectors of its fields (title,
description, tags, categories in ``Interactions.item_features``); a user's profile is the weighted
mean of the vectors of the items they interacted with plus the vector of their declared interests
(``user_features["interests"]``); scores are cosines. ``EmbeddingEncoder`` swaps TF-IDF for a
sentence-embedding model shipped in a local package (optional extra, never downloaded).

Example::

    model = ContentModel().fit(data)                     # data.item_features["title"] = [...]
    ids, scores = model.recommend_for_profile("ёлочные игрушки", n=10)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import history_rows, positive_matrix
from personify.algorithms.base import IdArray, Recommender, ScoreArray, top_n
from personify.data.interactions import Interactions
from personify.data.text import StemMode, Tokenizer
from personify.domain.errors import ConfigurationError, InvalidInput, Unavailable

DEFAULT_FIELD_WEIGHTS: dict[str, float] = {
    "title": 2.0,
    "description": 1.0,
    "tags": 1.0,
    "categories": 1.0,
}


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return " ".join(str(v) for v in value)
    return str(value)


def field_texts(data: Interactions, fields: Sequence[str]) -> dict[str, list[str]]:
    """Per-field item texts (lists joined by blanks); missing fields are left out."""
    texts: dict[str, list[str]] = {}
    for name in fields:
        values = data.item_features.get(name)
        if values is None:
            continue
        if len(values) != data.n_items:
            raise InvalidInput(
                f"item_features[{name!r}] has {len(values)} values for {data.n_items} items",
                field=f"item_features.{name}",
                accepted="one value per item, in item index order",
            )
        texts[name] = [_as_text(v) for v in values]
    return texts


def _l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ m, dtype=np.float32)


def _require_sklearn() -> Any:
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise Unavailable(
            "the content model needs scikit-learn", accepted="pip install 'personify[train]'"
        ) from exc
    return TfidfVectorizer


class TextVectorizer:
    """Fields of text -> one L2-normalised sparse vector per item (TF-IDF, shared vocabulary)."""

    def __init__(
        self,
        field_weights: Mapping[str, float],
        *,
        stem: StemMode = "snowball",
        min_df: int = 1,
        max_df: float = 1.0,
        ngram_range: tuple[int, int] = (1, 1),
        max_features: int | None = None,
    ) -> None:
        self.field_weights = dict(field_weights)
        vectorizer = _require_sklearn()
        self.vectorizer_ = vectorizer(
            tokenizer=Tokenizer(stem=stem),
            lowercase=False,
            token_pattern=None,
            min_df=min_df,
            max_df=max_df,
            ngram_range=ngram_range,
            max_features=max_features,
            sublinear_tf=True,
            dtype=np.float32,
        )

    def fit_transform(self, texts: Mapping[str, list[str]]) -> sp.csr_matrix:
        corpus = [t for name in texts for t in texts[name]]
        if not any(t.strip() for t in corpus):
            raise InvalidInput(
                "no item text to learn from",
                field="item_features",
                accepted="item_features with at least one of " + ", ".join(self.field_weights),
            )
        self.vectorizer_.fit(corpus)
        return self.transform(texts)

    def transform(self, texts: Mapping[str, list[str]]) -> sp.csr_matrix:
        total: sp.csr_matrix | None = None
        for name, values in texts.items():
            part = _l2_rows(self.vectorizer_.transform(values)) * self.field_weights.get(name, 1.0)
            total = part if total is None else total + part
        if total is None:
            raise InvalidInput("no text fields given", field="texts")
        return _l2_rows(sp.csr_matrix(total))

    def transform_text(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Free texts (queries, declared interests) in the same space."""
        return _l2_rows(self.vectorizer_.transform(list(texts)))

    @property
    def n_features(self) -> int:
        return len(self.vectorizer_.vocabulary_)


class ContentModel(Recommender):
    """TF-IDF content matching: users get items whose text resembles what they liked."""

    name: ClassVar[str] = "content"
    fitted_attribute: ClassVar[str] = "item_vectors_"

    def __init__(
        self,
        *,
        field_weights: Mapping[str, float] | None = None,
        stem: StemMode = "snowball",
        min_df: int = 1,
        max_df: float = 0.5,
        ngram_range: tuple[int, int] = (1, 1),
        max_features: int | None = 50_000,
        interest_weight: float = 1.0,
        binary: bool = False,
    ) -> None:
        self.field_weights = dict(field_weights or DEFAULT_FIELD_WEIGHTS)
        self.stem = stem
        self.min_df = min_df
        self.max_df = max_df
        self.ngram_range = ngram_range
        self.max_features = max_features
        self.interest_weight = interest_weight
        self.binary = binary

    def fit(self, data: Interactions) -> Self:
        if self.interest_weight < 0:
            raise ConfigurationError("interest_weight must be >= 0", field="interest_weight",
                                     accepted=">= 0")
        texts = field_texts(data, list(self.field_weights))
        self.text_ = TextVectorizer(
            self.field_weights,
            stem=self.stem,
            min_df=self.min_df,
            max_df=self.max_df if data.n_items > 20 else 1.0,
            ngram_range=self.ngram_range,
            max_features=self.max_features,
        )
        self.item_vectors_: sp.csr_matrix = self.text_.fit_transform(texts)
        self.X_ = positive_matrix(data, binary=self.binary)
        interests = data.user_features.get("interests")
        self.interest_vectors_: sp.csr_matrix | None = None
        if interests is not None and len(interests) == data.n_users:
            self.interest_vectors_ = self.text_.transform_text([_as_text(v) for v in interests])
        self.n_items_ = data.n_items
        return self

    def item_vectors_for(self, item_features: Mapping[str, Sequence[object]]) -> sp.csr_matrix:
        """Vectors of items not seen at fit time (new items), from their feature lists."""
        self.check_fitted()
        texts = {
            name: [_as_text(v) for v in values]
            for name, values in item_features.items()
            if name in self.field_weights
        }
        return self.text_.transform(texts)

    def profiles(
        self, rows: sp.csr_matrix, interests: sp.csr_matrix | None = None
    ) -> sp.csr_matrix:
        """User profiles: weighted mean of item vectors (+ interest vectors), L2-normalised."""
        weights = sp.csr_matrix(rows, dtype=np.float32)
        sums = np.asarray(weights.sum(axis=1)).ravel()
        inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
        mean = sp.csr_matrix(sp.diags(inv) @ weights @ self.item_vectors_)
        if interests is not None and self.interest_weight > 0:
            mean = mean + self.interest_weight * interests
        return _l2_rows(sp.csr_matrix(mean))

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        users = np.asarray(user_indices, dtype=np.int64)
        rows = history_rows(self.X_, users, history, binary=self.binary)
        interests = None
        if self.interest_vectors_ is not None and history is None:
            interests = self.interest_vectors_[users]
        return self.score_profiles(self.profiles(rows, interests))

    def score_profiles(self, profiles: sp.csr_matrix) -> NDArray[np.float32]:
        """Cosine of each profile row with every item."""
        return np.asarray((profiles @ self.item_vectors_.T).toarray(), dtype=np.float32)

    def score_new_users(
        self, interests: Sequence[str], history: sp.csr_matrix | None = None
    ) -> NDArray[np.float32]:
        """Scores for users unknown at fit time from declared interests and optional clicks."""
        self.check_fitted()
        vectors = self.text_.transform_text(list(interests))
        rows = (
            sp.csr_matrix((len(interests), self.n_items_), dtype=np.float32)
            if history is None
            else history_rows(self.X_, np.zeros(0, np.int64), history, binary=self.binary)
        )
        return self.score_profiles(self.profiles(rows, vectors))

    def recommend_for_profile(
        self, interests: str, n: int = 10, *, history_items: Sequence[int] = ()
    ) -> tuple[IdArray, ScoreArray]:
        """Top-``n`` for one new user from interest text and the items clicked so far."""
        history = sp.csr_matrix(
            (np.ones(len(history_items), np.float32),
             (np.zeros(len(history_items), np.int64), np.asarray(history_items, np.int64))),
            shape=(1, self.n_items_),
        )
        scores = self.score_new_users([interests], history)
        ids, top = top_n(scores, n, exclude=history if len(history_items) else None)
        return ids[0], top[0]

    def similar_items(
        self, item_indices: IdArray | list[int], n: int = 10
    ) -> tuple[IdArray, ScoreArray]:
        self.check_fitted()
        items = np.asarray(item_indices, dtype=np.int64)
        sims = np.asarray((self.item_vectors_[items] @ self.item_vectors_.T).toarray(), np.float32)
        sims[sims <= 0] = -np.inf
        sims[np.arange(len(items)), items] = -np.inf
        return top_n(sims, n)


class EmbeddingEncoder:
    """Sentence embeddings from a model directory shipped in a local package (optional extra).

    Loads with ``sentence_transformers`` from ``model_path`` only; nothing is downloaded. Raises
    ``Unavailable`` naming what is missing.
    """

    def __init__(self, model_path: str | Path, *, batch_size: int = 64) -> None:
        self.model_path = Path(model_path)
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        if not self.model_path.is_dir():
            raise Unavailable(
                f"no embedding model at {self.model_path}",
                field="model_path",
                accepted="the directory of a sentence-transformers model installed locally",
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise Unavailable(
                "sentence embeddings need the optional 'sentence-transformers' package",
                field="model_path",
                accepted="pip install sentence-transformers, or use ContentModel (TF-IDF)",
            ) from exc
        self._model = SentenceTransformer(str(self.model_path), local_files_only=True)
        return self._model

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """L2-normalised embeddings, one row per text."""
        model = self._load()
        out = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True)
        return np.asarray(out, dtype=np.float32)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}
