"""Training the LambdaRank ranker from the impression log: every logged impression is a query
group, its items are the documents, and the clicks / carts / purchases that quote its
recommendation id are the labels. Features come from ``personify.serving.features`` — the same
code the server runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from personify.domain.errors import Unavailable
from personify.domain.events import Context, Event
from personify.domain.items import Item
from personify.domain.users import User
from personify.serving.bundle import default_source_weights
from personify.serving.features import feature_matrix, source_features
from personify.serving.ranking import LambdaRankRanker

LABELS: dict[str, int] = {
    "click": 1,
    "email_click": 1,
    "add_to_cart": 2,
    "like": 2,
    "purchase": 3,
    "conversion": 3,
}


@dataclass
class RankingData:
    features: NDArray[np.float32]
    labels: NDArray[np.int32]
    groups: list[int]
    blend: NDArray[np.float32]
    """The blend score of each row (what the server ranks by without a ranker)."""
    timestamps: list[float] = field(default_factory=list)


def ranking_data(
    events: Iterable[Event],
    items: Mapping[str, Item],
    *,
    users: Callable[[str], User | None] = lambda user_id: None,
    popularity: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
) -> RankingData:
    """Join impressions with attributed feedback into LambdaRank groups (groups without any
    positive label are dropped: they carry no ranking signal)."""
    weights = dict(weights or default_source_weights())
    popularity = popularity or {}
    impressions: dict[str, Event] = {}
    labels: dict[str, dict[str, int]] = {}
    for event in events:
        if event.type == "impression" and event.recommendation_id and event.item_ids:
            impressions[event.recommendation_id] = event
        elif event.recommendation_id and event.item_id and event.type in LABELS:
            per = labels.setdefault(event.recommendation_id, {})
            per[event.item_id] = max(per.get(event.item_id, 0), LABELS[event.type])
    blocks, ys, blends, times = [], [], [], []
    # oldest first (the newest groups validate); impressions of one second by recommendation id
    for rec_id, imp in sorted(impressions.items(), key=lambda kv: (kv[1].timestamp, kv[0])):
        got = labels.get(rec_id)
        if not got:
            continue
        block, y, blend = impression_group(
            imp, got, items, users=users, popularity=popularity, weights=weights
        )
        blocks.append(block)
        ys.append(y)
        blends.append(blend)
        times.append(imp.timestamp.timestamp())
    return assemble(blocks, ys, blends, times)


def assemble(
    blocks: list[NDArray[np.float32]], ys: list[list[int]], blends: list[list[float]],
    times: list[float],
) -> RankingData:
    """The groups (oldest first) as one ``RankingData``."""
    if not blocks:
        width = feature_matrix(
            [],
            when=datetime(1970, 1, 1, tzinfo=UTC),
            context=Context(),
            time_zone=None,
            country=None,
            items={},
            popularity={},
        ).shape[1]
        return RankingData(
            np.zeros((0, width), np.float32), np.zeros(0, np.int32), [], np.zeros(0, np.float32)
        )
    return RankingData(
        np.vstack(blocks),
        np.concatenate([np.asarray(y, np.int32) for y in ys]),
        [len(y) for y in ys],
        np.concatenate([np.asarray(b, np.float32) for b in blends]),
        times,
    )


def impression_group(
    imp: Event,
    got: Mapping[str, int],
    items: Mapping[str, Item],
    *,
    users: Callable[[str], User | None],
    popularity: Mapping[str, float],
    weights: Mapping[str, float],
) -> tuple[NDArray[np.float32], list[int], list[float]]:
    """One query group: the features of an impression's items (the source scores it logged,
    its context, the items), their labels (``got``: item id -> label) and blend scores."""
    ids = list(imp.item_ids or [])
    source_scores = []
    for pos, item_id in enumerate(ids):
        scores = {}
        for name in source_features():
            values = imp.properties.get(f"score_{name}")
            if isinstance(values, list) and pos < len(values):
                value = values[pos]
                scores[name] = float(value) if isinstance(value, int | float) else 0.0
        source_scores.append((item_id, scores))
    user = users(imp.user_id) if imp.user_id else None
    profile = user.profile if user is not None else None
    location = imp.context.location
    block = feature_matrix(
        source_scores,
        when=imp.timestamp,
        context=imp.context,
        time_zone=profile.time_zone if profile else None,
        country=(location.country if location else None)
        or (profile.country if profile else None),
        items={i: items.get(i) for i in ids},
        popularity=popularity,
    )
    blend = [sum(weights.get(k, 0.1) * v for k, v in s.items()) for _, s in source_scores]
    return block, [got.get(i, 0) for i in ids], blend


def ndcg_at(scores: NDArray[Any], labels: NDArray[Any], groups: list[int], k: int = 10) -> float:
    """Mean NDCG@k over groups (graded gains 2^label - 1)."""
    out, start = [], 0
    for size in groups:
        s, y = scores[start : start + size], labels[start : start + size]
        start += size
        order = np.argsort(-s, kind="stable")[:k]
        ideal = np.sort(y)[::-1][:k]
        disc = 1.0 / np.log2(np.arange(2, k + 2))
        idcg = float(((2.0**ideal - 1) * disc[: len(ideal)]).sum())
        if idcg > 0:
            out.append(float(((2.0 ** y[order] - 1) * disc[: len(order)]).sum()) / idcg)
    return float(np.mean(out)) if out else 0.0


@dataclass
class RankerFit:
    ranker: LambdaRankRanker | None
    metrics: dict[str, Any]


def train_ranker(
    data: RankingData, *, min_groups: int = 50, valid_share: float = 0.2, seed: int = 0
) -> RankerFit:
    """Fit LambdaRank on the older groups, validate on the newest; keeps the ranker only if it
    beats the blend on validation NDCG@10 (otherwise the server keeps the blend)."""
    if len(data.groups) < min_groups:
        skipped = f"fewer than {min_groups} impressions with attributed feedback"
        return RankerFit(None, {"groups": len(data.groups), "skipped": skipped})
    try:
        import lightgbm
    except ImportError as exc:
        raise Unavailable("the ranker needs LightGBM: pip install 'personify[train]'") from exc
    n_valid = max(1, int(len(data.groups) * valid_share))
    cut_groups = len(data.groups) - n_valid
    cut_rows = int(sum(data.groups[:cut_groups]))
    model = lightgbm.LGBMRanker(
        objective="lambdarank",
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=10,
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    )
    model.fit(data.features[:cut_rows], data.labels[:cut_rows], group=data.groups[:cut_groups])
    valid_groups = data.groups[cut_groups:]
    predicted = np.asarray(model.predict(data.features[cut_rows:]))
    ranker_ndcg = ndcg_at(predicted, data.labels[cut_rows:], valid_groups)
    blend_ndcg = ndcg_at(data.blend[cut_rows:], data.labels[cut_rows:], valid_groups)
    metrics = {
        "valid_ndcg@10_ranker": ranker_ndcg,
        "valid_ndcg@10_blend": blend_ndcg,
        "groups": len(data.groups),
    }
    if ranker_ndcg <= blend_ndcg:
        return RankerFit(None, {**metrics, "skipped": "the ranker did not beat the blend"})
    model.fit(data.features, data.labels, group=data.groups)  # refit on everything for serving
    return RankerFit(LambdaRankRanker(model.booster_.model_to_string(), metrics=metrics), metrics)
