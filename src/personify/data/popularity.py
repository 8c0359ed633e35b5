"""Decayed item popularity: the trained ``popular`` signal and, at the online state's shorter
half-life, what the live ``trending`` counters hold at the training cut-off."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from personify.data.interactions import Interactions


def decayed_popularity(data: Interactions, half_life_days: float) -> NDArray[np.float32]:
    """Sum of positive weights per item, each decayed by its age at the newest event."""
    weights = np.clip(data.weights, 0, None).astype(np.float64)
    if data.timestamps is not None and data.timestamps.size:
        age_days = (data.timestamps.max() - data.timestamps) / 86_400.0
        weights = weights * np.exp(-np.log(2) * age_days / half_life_days)
    pop = np.bincount(data.item_idx, weights=weights, minlength=data.n_items)
    return pop.astype(np.float32)


__all__ = ["decayed_popularity"]
