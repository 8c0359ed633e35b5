"""Item text for the contract suite's planted dataset: each planted cluster gets its own words."""

from __future__ import annotations

import numpy as np

from personify.data.splits import Split
from personify.testing.algorithm_contracts import planted_split

TOPICS = [
    "красные свечи candles",
    "garden flower pots",
    "детские игрушки toys",
    "kitchen mugs teapot",
    "christmas ёлочные украшения",
    "paper cards wrap",
    "leather bags purse",
    "stationery notebook pencil",
]


def planted_split_with_text(seed: int = 7, n_items: int = 160, n_clusters: int = 8) -> Split:
    """``planted_split()`` plus a ``title`` per item naming its cluster's topic (the clusters are
    re-derived with the same seed as ``planted_split`` draws them)."""
    split = planted_split(n_items=n_items, n_clusters=n_clusters, seed=seed)
    rng = np.random.default_rng(seed)
    clusters = np.array_split(rng.permutation(n_items), n_clusters)
    topic = {f"i{item}": TOPICS[c % len(TOPICS)] for c, members in enumerate(clusters)
             for item in members.tolist()}
    titles: list[object] = [f"{topic[item]} {item}" for item in split.train.items.ids]
    for part in split:
        part.item_features["title"] = titles
    return split
